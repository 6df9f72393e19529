package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
)

// newMediaProxy forwards the media downloads (im.MediaDownloadPath and
// im.MediaThumbPath, plain HTTP GETs with Range) to the sendmedia
// Logicsvr's HTTP port, so that the web chat page reads media from its own
// origin: an <img> cannot carry the session token, so the page fetches
// with an Authorization header and shows a blob, and a fetch to another
// origin would need CORS on sendmedia for every browser client. The
// gateway only relays: sendmedia checks the token and the participant, as
// it does for native clients that download from it directly.
//
// Only the headers a download needs go on (the token, Range and the
// conditional headers); a response streams through, so a large video
// costs the gateway a buffer, not its size.
// forwardedMediaHeaders are the request headers a download reads.
var forwardedMediaHeaders = []string{"Authorization", "Range", "If-Range", "If-None-Match", "If-Modified-Since"}

func newMediaProxy(addr string, log *slog.Logger) *httputil.ReverseProxy {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   64,
	}
	return &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			pr.Out.Host = addr
			h := http.Header{}
			for _, k := range forwardedMediaHeaders {
				if v := pr.In.Header.Values(k); len(v) > 0 {
					h[k] = v
				}
			}
			pr.Out.Header = h
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			log.Warn("gateway: media download not forwarded", "path", r.URL.Path, "err", err)
			cgi.WriteError(w, svrkit.Errorf(svrkit.Unavailable, "media service unreachable: %v", err))
		},
	}
}

// mountMedia registers the download paths on the host's HTTP port; with no
// media address configured they answer unavailable, so a page asking for
// an image learns why instead of getting the chat page's 404.
func mountMedia(handle func(string, http.Handler), addr string, log *slog.Logger) {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		cgi.WriteError(w, svrkit.NewError(svrkit.Unavailable, "this gateway forwards no media: set app media_http to the sendmedia Logicsvr's HTTP address"))
	})
	if addr != "" {
		h = newMediaProxy(addr, log)
	}
	for _, p := range []string{im.MediaDownloadPath, im.MediaThumbPath} {
		handle("GET "+p+"{media_id}", h)
	}
}
