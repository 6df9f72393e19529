// Package compiler runs svrkit's IDL compiler without protoc. Parse compiles
// .proto files with protoparse (a pure-Go protobuf compiler); Generate feeds
// the result to protoc-gen-go's generator and svrkit's in process, through
// the very CodeGeneratorRequest protoc would send to the two plugins. The
// request is marshalled and unmarshalled on the way, as it would be on a
// plugin's stdin, so that the plugins see exactly what they see under protoc
// and write the same bytes; the protoc test in package generator holds this
// to account.
//
// "svrkit/options.proto" is always importable: when no import path has it,
// Parse uses the copy compiled into package svrkitpb, the way protoc always
// knows google/protobuf/*.proto.
package compiler

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/jhump/protoreflect/desc"
	"github.com/jhump/protoreflect/desc/protoparse"
	svrkitpb "github.com/svrkit/svrkit/idl/svrkit"
	"github.com/svrkit/svrkit/protoc-gen-svrkit/generator"
	gengo "google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// PosError is a syntax or link error in a .proto file.
type PosError struct {
	// File is the file's name relative to its import path.
	File         string
	Line, Column int
	Msg          string
}

func (e *PosError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// PosErrors is every error Parse found, in the order found.
type PosErrors []*PosError

func (es PosErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Parse compiles the named files, given relative to importPaths ("." if
// none), with source info. It returns them and everything they import, each
// file after its imports, as protoc orders a CodeGeneratorRequest. Syntax and
// link errors come back as PosErrors.
func Parse(importPaths []string, names ...string) (*descriptorpb.FileDescriptorSet, error) {
	var errs PosErrors
	p := protoparse.Parser{
		ImportPaths:           importPaths,
		IncludeSourceCodeInfo: true,
		LookupImportProto: func(name string) (*descriptorpb.FileDescriptorProto, error) {
			if name == svrkitpb.OptionsProtoPath {
				return protodesc.ToFileDescriptorProto(svrkitpb.File_svrkit_options_proto), nil
			}
			return nil, os.ErrNotExist
		},
		ErrorReporter: func(err protoparse.ErrorWithPos) error {
			pos := err.GetPosition()
			errs = append(errs, &PosError{File: pos.Filename, Line: pos.Line, Column: pos.Col, Msg: err.Unwrap().Error()})
			return nil
		},
	}
	fds, err := p.ParseFiles(names...)
	if len(errs) > 0 {
		return nil, errs
	}
	if err != nil {
		return nil, err
	}
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd *desc.FileDescriptor)
	add = func(fd *desc.FileDescriptor) {
		if seen[fd.GetName()] {
			return
		}
		seen[fd.GetName()] = true
		for _, dep := range fd.GetDependencies() {
			add(dep)
		}
		set.File = append(set.File, fd.AsFileDescriptorProto())
	}
	for _, fd := range fds {
		add(fd)
	}
	return set, nil
}

// File is one generated file: its name relative to the output directory
// and its content.
type File struct {
	Name    string
	Content []byte
}

// Generate runs protoc-gen-go and protoc-gen-svrkit over the named files of
// set (which must hold them and all they import), with param as both
// plugins' parameter ("paths=source_relative", "module=example.com/m"). It
// returns the generated files sorted by name. Invalid svrkit options come
// back as generator.Errors.
func Generate(set *descriptorpb.FileDescriptorSet, names []string, param string) ([]File, error) {
	req := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: names,
		ProtoFile:      set.GetFile(),
	}
	if param != "" {
		req.Parameter = proto.String(param)
	}
	// Round-trip through the wire form, as protoc's pipe would: options
	// then hold svrkit's extensions as the generated types, not as the
	// dynamic messages the parser built.
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	req = &pluginpb.CodeGeneratorRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		return nil, err
	}
	gen, err := protogen.Options{ParamFunc: generator.ParamFunc}.New(req)
	if err != nil {
		return nil, err
	}
	for _, f := range gen.Files {
		if f.Generate {
			gengo.GenerateFile(gen, f)
		}
	}
	if err := generator.Generate(gen); err != nil {
		return nil, err
	}
	resp := gen.Response()
	if resp.Error != nil {
		return nil, errors.New(resp.GetError())
	}
	files := make([]File, 0, len(resp.File))
	for _, f := range resp.File {
		files = append(files, File{Name: f.GetName(), Content: []byte(f.GetContent())})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}
