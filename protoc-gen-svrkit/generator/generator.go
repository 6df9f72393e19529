// Package generator is svrkit's IDL compiler: it turns protobuf services
// annotated with svrkit's options (svrkit/options.proto) into the Go that
// serves and calls them. It is a library so that both the protoc plugin
// (protoc-gen-svrkit) and `svrkit gen`, which parses .proto files itself and
// needs no protoc, run exactly the same code and write the same bytes.
//
// # Data flow
//
// The input is a protogen.Plugin, i.e. a CodeGeneratorRequest: the files to
// generate and all their imports, with source info. Load reads every
// service's and method's svrkit options and validates them across all the
// files of the request, since cmdids and CGI paths must be unique within a
// Logicsvr and a Logicsvr's services may be spread over several files. Any
// mistake is reported as an Error at the file:line:column of the offending
// option (or of the rpc, when an option is missing); all mistakes are
// reported together and nothing is generated when there is one.
//
// Generate then writes, for each .proto file that declares services, a
// <name>.svrkit.go beside protoc-gen-go's <name>.pb.go, in the same Go
// package. Per service Foo it declares, in the shape protoc-gen-go-grpc and
// protoc-gen-connect-go made familiar:
//
//   - Foo_ServiceName, and Foo_Bar_CmdID and Foo_Bar_FullMethodName per rpc;
//   - FooServer, the interface a handler implements, and
//     UnimplementedFooServer, to embed for forward compatibility (its methods
//     return svrkit.Unimplemented errors);
//   - Foo_ServiceDesc, the svrkit.ServiceDesc built from the IDL: cmdids,
//     CGI paths, timeouts (the method's or else the service's), idempotency,
//     priority, non-blocking, message constructors, the routing-key
//     extractor and the handler adapters;
//   - RegisterFooServer, for any svrkit.Registrar (the binary RPC server and
//     the HTTP CGI front alike);
//   - FooClient and NewFooClient, a typed client over any svrkit.Invoker.
//
// Per enum E whose values declare monitor points (option
// (svrkit.monitor); see monitor.go), it declares E_V_ID, a monitor.ID
// constant per value V, and E_MonitorDecls, the table an init function
// declares, so one IDL gives the RPC code, the mains and the monitor
// points. A file with monitor enums but no services gets a .svrkit.go too.
//
// The .proto comments of services and rpcs are carried onto the Go
// declarations. Code is built with jennifer, which picks import names and
// gofmt's the result; the generator steers jennifer's import names away from
// the local variable names the generated functions use, so an imported proto
// package named "in" or "req" still compiles.
//
// Descriptors for generic callers (`svrkit call`, the describe endpoint) need
// nothing extra: protoc-gen-go's code registers each file in
// protoregistry.GlobalFiles, where a ServiceDesc's Name resolves to its
// protoreflect.ServiceDescriptor.
package generator

import (
	"bytes"
	"fmt"

	"github.com/dave/jennifer/jen"
	gengo "google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo"
	"google.golang.org/protobuf/compiler/protogen"
)

// Version is the generator's version, printed by protoc-gen-svrkit --version.
const Version = "v0.1.0"

// FileSuffix ends the name of every file the generator writes.
const FileSuffix = ".svrkit.go"

// Configure declares to protoc what the generator supports. It supports what
// protoc-gen-go supports, since its output sits beside protoc-gen-go's.
func Configure(gen *protogen.Plugin) {
	gen.SupportedFeatures = gengo.SupportedFeatures
	gen.SupportedEditionsMinimum = gengo.SupportedEditionsMinimum
	gen.SupportedEditionsMaximum = gengo.SupportedEditionsMaximum
}

// Generate validates the svrkit options of every file gen is asked to
// generate and, if all are valid, adds a <name>.svrkit.go to gen's response
// for each of those files that declares services. On invalid IDL it returns
// Errors and generates nothing.
func Generate(gen *protogen.Plugin) error {
	Configure(gen)
	services, monitors, err := load(gen)
	if err != nil {
		return err
	}
	byFile := map[*protogen.File][]*Service{}
	for _, s := range services {
		byFile[s.File] = append(byFile[s.File], s)
	}
	monitorsByFile := map[*protogen.File][]*MonitorEnum{}
	for _, me := range monitors {
		monitorsByFile[me.File] = append(monitorsByFile[me.File], me)
	}
	for _, f := range gen.Files {
		if !f.Generate || len(byFile[f]) == 0 && len(monitorsByFile[f]) == 0 {
			continue
		}
		src, err := render(gen, f, byFile[f], monitorsByFile[f])
		if err != nil {
			return err
		}
		g := gen.NewGeneratedFile(f.GeneratedFilenamePrefix+FileSuffix, f.GoImportPath)
		if _, err := g.Write(src); err != nil {
			return err
		}
	}
	if mainsRequested(gen) {
		return generateMains(gen, services)
	}
	return nil
}

// render builds one file's Go source.
func render(gen *protogen.Plugin, f *protogen.File, services []*Service, monitors []*MonitorEnum) ([]byte, error) {
	jf := jen.NewFilePathName(string(f.GoImportPath), string(f.GoPackageName))
	jf.HeaderComment("Code generated by protoc-gen-svrkit. DO NOT EDIT.")
	jf.HeaderComment("source: " + f.Desc.Path())
	nameImports(gen, jf, f, services)
	e := &emitter{gen: gen, f: jf}
	for _, me := range monitors {
		e.monitorEnum(me)
	}
	for _, s := range services {
		e.service(s)
	}
	var buf bytes.Buffer
	if err := jf.Render(&buf); err != nil {
		return nil, fmt.Errorf("%s: rendering generated code: %w", f.Desc.Path(), err)
	}
	return buf.Bytes(), nil
}
