// Command protoc-gen-svrkit is svrkit's protoc plugin. It writes, beside
// protoc-gen-go's <name>.pb.go, a <name>.svrkit.go with each service's server
// interface, service descriptor, registration function and typed client; see
// package generator for what is generated and why.
//
//	protoc -I idl -I . --go_out=. --go_opt=paths=source_relative \
//	    --svrkit_out=. --svrkit_opt=paths=source_relative hello/hello.proto
//
// It takes protogen's standard parameters (paths=import|source_relative,
// module=PREFIX, M<file>=<package>) and works under buf as a local plugin.
// `svrkit gen` runs the same generator without protoc.
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
	protogen.Options{}.Run(generator.Generate)
}
