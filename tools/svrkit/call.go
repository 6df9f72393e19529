package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	svrkitpb "github.com/svrkit/svrkit/idl/svrkit"
	"github.com/svrkit/svrkit/protoc-gen-svrkit/compiler"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
	"github.com/svrkit/svrkit/tools/internal/cmdline"
	"github.com/svrkit/svrkit/tools/svrkit/upstate"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

func init() {
	register(&command{
		name:    "call",
		summary: "call a method of a running service with a JSON request, like grpcurl",
		help:    callHelp,
		run:     runCall,
	})
}

var callHelp = cmdline.Help{
	Name:  "svrkit call",
	Usage: []string{"svrkit call [flags] TARGET METHOD", "svrkit call -list [flags] TARGET"},
	Text: `Calls METHOD (package.Service/Method or package.Service.Method) on the
service at TARGET with a JSON request and prints the JSON response.

TARGET is host:port for svrkit's binary RPC, http://host:port for the HTTP
front (svrkit/cgi), where the method's Connect route is called, or the name
of a service that 'svrkit up' runs (an instance, a topology service or a
protobuf service, as for 'svrkit addr'), called over binary RPC at the
address in up's state file (-up); a service with replicas is called at all
of their addresses, so that a replica group's redirect to its leader is
followed. TARGET may also list several host:port, comma-separated.

The request and response types come from the server's describe endpoint,
or from .proto files given with -proto (and -I) when the server has none.
Over binary RPC the method's cmdid comes from its svrkit options.

Services that require service authentication (all that 'svrkit up' runs)
answer only callers that prove an identity: -key names a private key file
(and -identity the identity it proves, default the file's name without
.key). A TARGET given by name uses up's operator key (keys/operator.key
beside the state file) unless -key is set; an operator may call every
service.

Exit status: 0 on success; 1 when the call fails (its code and message on
stderr: "svrkit call: invalid_argument: name is required"); 2 for bad usage.`,
}

func runCall(e *env, args []string) error {
	fset := flag.NewFlagSet("call", flag.ContinueOnError)
	data := fset.String("d", "{}", "request as JSON; @FILE reads it from FILE, @- from stdin")
	var protos, importPaths, headers stringList
	fset.Var(&protos, "proto", "take descriptors from this .proto `file` instead of the server (repeatable)")
	fset.Var(&importPaths, "I", "import `dir` for -proto files (repeatable; default .)")
	fset.Var(&headers, "H", "send metadata `key:value` (repeatable)")
	timeout := fset.Duration("timeout", 10*time.Second, "give up after this long")
	list := fset.Bool("list", false, "list the services and methods instead of calling")
	upState := fset.String("up", filepath.Join(".data", upstate.FileName), "svrkit up's state `file`, where a TARGET given by name is found")
	keyFile := fset.String("key", "", "prove an identity with this Ed25519 private key `file` (PEM)")
	identity := fset.String("identity", "", "the `identity` -key proves (default: the key file's name without .key)")
	if err := e.parse(fset, args, callHelp); err != nil {
		return err
	}
	switch {
	case *list && fset.NArg() != 1:
		return e.usagef(callHelp, "-list takes one TARGET")
	case !*list && fset.NArg() != 2:
		return e.usagef(callHelp, "give a TARGET and a METHOD")
	}
	target := fset.Arg(0)
	if !strings.Contains(target, ":") {
		in, err := findInstance(e, *upState, target)
		if err != nil {
			return err
		}
		target = in.RPC
		if st, err := upstate.Read(e.abs(*upState)); err == nil {
			// Every replica of a service, so that a redirect to the
			// group's leader can be followed.
			if all := st.RPCs(fset.Arg(0)); len(all) > 1 {
				target = strings.Join(all, ",")
			}
		}
		if *keyFile == "" {
			// up keeps its keys beside its state file, in {data}/keys.
			op := svrkit.KeyPath(filepath.Join(filepath.Dir(e.abs(*upState)), "keys"), operatorIdentity)
			if _, err := os.Stat(op); err == nil {
				*keyFile = op
			}
		}
	}
	var clientOpts []svrkit.ClientOption
	if *keyFile != "" {
		key, err := svrkit.ReadKey(*keyFile)
		if err != nil {
			return err
		}
		id := *identity
		if id == "" {
			id = strings.TrimSuffix(filepath.Base(*keyFile), ".key")
		}
		clientOpts = append(clientOpts, svrkit.WithIdentity(id, key))
	}

	md := svrkit.Metadata{}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("-H %q: want key:value", h)
		}
		md[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}

	ctx, cancel := context.WithTimeout(e.ctx, *timeout)
	defer cancel()
	if len(md) > 0 {
		ctx = svrkit.WithOutgoingMetadata(ctx, md)
	}

	inv, closeInv, err := dial(target, clientOpts...)
	if err != nil {
		return err
	}
	defer closeInv()

	var set *descriptorpb.FileDescriptorSet
	if len(protos) > 0 {
		set, err = parseProtos(e, importPaths, protos)
	} else {
		set, err = describe(ctx, inv)
	}
	if err != nil {
		return err
	}
	files, err := loadFiles(set)
	if err != nil {
		return err
	}
	if *list {
		return listServices(e.stdout, files)
	}

	md2, err := findMethod(files, fset.Arg(1))
	if err != nil {
		return err
	}
	types := dynamicpb.NewTypes(files)
	reqJSON, err := readData(e, *data)
	if err != nil {
		return err
	}
	req := dynamicpb.NewMessage(md2.Input())
	if err := (protojson.UnmarshalOptions{Resolver: types}).Unmarshal(reqJSON, req); err != nil {
		return fmt.Errorf("request for %s: %v", md2.FullName(), err)
	}
	resp := dynamicpb.NewMessage(md2.Output())
	method, err := methodDesc(md2)
	if err != nil {
		return err
	}
	if err := inv.Invoke(ctx, method, req, resp); err != nil {
		se := svrkit.AsError(err)
		return &exitError{code: 1, msg: fmt.Sprintf("svrkit call: %s: %s", se.Code(), se.Message())}
	}
	out, err := formatJSON(resp, types)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(out)
	return err
}

// dial returns an invoker for target: the HTTP front for http(s) URLs, the
// binary RPC client otherwise.
func dial(target string, opts ...svrkit.ClientOption) (svrkit.Invoker, func(), error) {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return cgi.NewClient(target, &http.Client{}), func() {}, nil
	}
	c, err := svrkit.NewClient(target, opts...)
	if err != nil {
		return nil, nil, err
	}
	return c, func() { c.Close() }, nil
}

func describe(ctx context.Context, inv svrkit.Invoker) (*descriptorpb.FileDescriptorSet, error) {
	set, err := svrkit.Describe(ctx, inv)
	if err != nil {
		se := svrkit.AsError(err)
		if c := se.Code(); c == svrkit.Unimplemented || c == svrkit.NotFound {
			return nil, fmt.Errorf("the server has no describe endpoint (%v); pass the .proto files with -proto", se)
		}
		return nil, fmt.Errorf("describe: %w", se)
	}
	return set, nil
}

func parseProtos(e *env, importPaths, protos []string) (*descriptorpb.FileDescriptorSet, error) {
	g := &generation{e: e}
	if len(importPaths) == 0 {
		importPaths = []string{"."}
	}
	for _, p := range importPaths {
		g.importPaths = append(g.importPaths, e.abs(p))
	}
	names, err := g.protoNames(protos)
	if err != nil {
		return nil, err
	}
	set, err := compiler.Parse(g.importPaths, names...)
	if err != nil {
		return nil, g.relocate(err)
	}
	return set, nil
}

// loadFiles links a descriptor set into a registry. The set goes through
// the wire form first so that svrkit's options are decoded as svrkitpb
// types whatever produced the set.
func loadFiles(set *descriptorpb.FileDescriptorSet) (*protoregistry.Files, error) {
	b, err := proto.Marshal(set)
	if err != nil {
		return nil, err
	}
	clean := &descriptorpb.FileDescriptorSet{}
	if err := proto.Unmarshal(b, clean); err != nil {
		return nil, err
	}
	files, err := protodesc.NewFiles(clean)
	if err != nil {
		return nil, fmt.Errorf("descriptors: %w", err)
	}
	return files, nil
}

// findMethod resolves "pkg.Service/Method" or "pkg.Service.Method".
func findMethod(files *protoregistry.Files, name string) (protoreflect.MethodDescriptor, error) {
	name = strings.TrimPrefix(name, "/")
	svc, method, ok := strings.Cut(name, "/")
	if !ok {
		i := strings.LastIndex(name, ".")
		if i < 0 {
			return nil, fmt.Errorf("method %q: want package.Service/Method", name)
		}
		svc, method = name[:i], name[i+1:]
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, fmt.Errorf("no service %s (svrkit call -list shows what there is)", svc)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a service", svc)
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return nil, fmt.Errorf("service %s has no method %s (svrkit call -list shows what there is)", svc, method)
	}
	return md, nil
}

// methodDesc builds the svrkit.MethodDesc of a method from its descriptor
// and svrkit options, with dynamic messages.
func methodDesc(md protoreflect.MethodDescriptor) (*svrkit.MethodDesc, error) {
	opts, _ := proto.GetExtension(md.Options(), svrkitpb.E_Method).(*svrkitpb.MethodOptions)
	if opts.GetCmdid() == 0 {
		return nil, fmt.Errorf("method %s has no svrkit cmdid in its descriptor", md.FullName())
	}
	return &svrkit.MethodDesc{
		CmdID:       opts.GetCmdid(),
		FullName:    "/" + string(md.Parent().FullName()) + "/" + string(md.Name()),
		CGIPath:     opts.GetCgiPath(),
		Idempotent:  opts.GetIdempotent(),
		Priority:    uint8(opts.GetPriority()),
		NewRequest:  func() proto.Message { return dynamicpb.NewMessage(md.Input()) },
		NewResponse: func() proto.Message { return dynamicpb.NewMessage(md.Output()) },
	}, nil
}

func readData(e *env, data string) ([]byte, error) {
	switch {
	case data == "@-":
		return io.ReadAll(e.stdin)
	case strings.HasPrefix(data, "@"):
		return os.ReadFile(e.abs(data[1:]))
	}
	return []byte(data), nil
}

// formatJSON prints a message as indented JSON. protojson's own multi-line
// output varies its spacing from build to build on purpose; re-indenting
// compact output gives stable text.
func formatJSON(m proto.Message, types *dynamicpb.Types) ([]byte, error) {
	b, err := protojson.MarshalOptions{Resolver: types}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func listServices(w io.Writer, files *protoregistry.Files) error {
	var services []protoreflect.ServiceDescriptor
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			services = append(services, fd.Services().Get(i))
		}
		return true
	})
	sort.Slice(services, func(i, j int) bool { return services[i].FullName() < services[j].FullName() })
	for _, sd := range services {
		fmt.Fprintln(w, sd.FullName())
		for i := 0; i < sd.Methods().Len(); i++ {
			md := sd.Methods().Get(i)
			opts, _ := proto.GetExtension(md.Options(), svrkitpb.E_Method).(*svrkitpb.MethodOptions)
			line := fmt.Sprintf("  %s(%s) returns (%s)  cmdid %d", md.Name(), md.Input().FullName(), md.Output().FullName(), opts.GetCmdid())
			if p := opts.GetCgiPath(); p != "" {
				line += "  " + p
			}
			fmt.Fprintln(w, line)
		}
	}
	return nil
}
