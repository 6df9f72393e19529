// Package im is the IM backend's IDL compiled to Go: the messages, service
// interfaces and clients generated from idl/im/*.proto. The services, each its
// own binary, live below in logicsvr/<name> (generated main, hand-written
// handlers); topology.json runs them all with `svrkit up`.
package im

//go:generate go run github.com/svrkit/svrkit/tools/svrkit gen -mains -I ../../idl -module github.com/svrkit/svrkit -out ../.. ../../idl/im

// The media download paths (media.proto's Download): plain HTTP GETs with
// Range, served by the sendmedia Logicsvr and forwarded by the gateway's
// HTTP port; the media id follows.
const (
	MediaDownloadPath = "/cgi-bin/media/download/"
	MediaThumbPath    = "/cgi-bin/media/thumb/"
)
