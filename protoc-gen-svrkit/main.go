// Command protoc-gen-svrkit is svrkit's protoc plugin. It writes, beside
// protoc-gen-go's <name>.pb.go, a <name>.svrkit.go with each service's server
// interface, service descriptor, registration function and typed client; see
// package generator for what is generated and why.
//
//	protoc -I idl -I . --go_out=. --go_opt=paths=source_relative \
//	    --svrkit_out=. --svrkit_opt=paths=source_relative hello/hello.proto
//
// It takes protogen's standard parameters (paths=import|source_relative,
// module=PREFIX, M<file>=<package>). Under buf it is a local plugin beside
// protoc-gen-go, in buf.gen.yaml:
//
//	version: v2
//	plugins:
//	  - local: protoc-gen-go
//	    out: .
//	    opt: paths=source_relative
//	  - local: protoc-gen-svrkit
//	    out: .
//	    opt: paths=source_relative
//
// with svrkit's idl/ directory (for svrkit/options.proto) in the buf module
// or its dependencies. `svrkit gen` runs the same generator without protoc
// or buf, and writes the same bytes.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/svrkit/svrkit/protoc-gen-svrkit/generator"
	"google.golang.org/protobuf/compiler/protogen"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println(filepath.Base(os.Args[0]), generator.Version)
		return
	}
	protogen.Options{ParamFunc: generator.ParamFunc}.Run(generator.Generate)
}
