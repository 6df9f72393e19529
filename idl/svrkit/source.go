// Package svrkitpb holds svrkit's IDL options, svrkit/options.proto, as Go
// types: the protoc plugin and `svrkit gen` read a method's cmdid, CGI path,
// timeout and priority, and a service's Logicsvr and routing key, through
// E_Method and E_Service.
//
// The .proto source is embedded too (OptionsProto), so that `svrkit gen` can
// compile IDL that imports "svrkit/options.proto" without a copy of svrkit's
// idl/ directory on its import path, the way protoc always knows
// google/protobuf/descriptor.proto.
package svrkitpb

import _ "embed"

//go:generate go run github.com/svrkit/svrkit/tools/svrkit gen -I .. -out .. options.proto

// OptionsProtoPath is the import path of the options file.
const OptionsProtoPath = "svrkit/options.proto"

// OptionsProto is the source text of svrkit/options.proto.
//
//go:embed options.proto
var OptionsProto string
