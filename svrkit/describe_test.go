package svrkit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/hello"
	svrkitpb "github.com/svrkit/svrkit/idl/svrkit"
	"github.com/svrkit/svrkit/svrkit"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// checkHelloSet checks that set describes hello.Greeter completely: its file
// after its imports, and svrkit's options (the cmdid) readable from it.
func checkHelloSet(t *testing.T, set *descriptorpb.FileDescriptorSet) {
	t.Helper()
	var names []string
	for _, f := range set.GetFile() {
		names = append(names, f.GetName())
	}
	want := "google/protobuf/descriptor.proto svrkit/options.proto hello/hello.proto"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("files %s, want %s", got, want)
	}
	// Through the wire form, as a remote caller gets it.
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	remote := &descriptorpb.FileDescriptorSet{}
	if err := proto.Unmarshal(b, remote); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(remote)
	if err != nil {
		t.Fatalf("the set does not link: %v", err)
	}
	d, err := files.FindDescriptorByName("hello.Greeter.SayHello")
	if err != nil {
		t.Fatal(err)
	}
	md := d.(protoreflect.MethodDescriptor)
	opts := proto.GetExtension(md.Options(), svrkitpb.E_Method).(*svrkitpb.MethodOptions)
	if opts.GetCmdid() != hello.Greeter_SayHello_CmdID || opts.GetCgiPath() != "/cgi-bin/hello/sayhello" {
		t.Errorf("svrkit options in the described method: %v", opts)
	}
	if md.Input().FullName() != "hello.HelloRequest" {
		t.Errorf("request type %s", md.Input().FullName())
	}
}

func TestDescribeFiles(t *testing.T) {
	handWritten := &svrkit.ServiceDesc{Name: "nowhere.Service"}
	set := svrkit.DescribeFiles([]*svrkit.ServiceDesc{
		handWritten, &hello.Greeter_ServiceDesc, svrkit.DescribeServiceDesc(), &hello.Greeter_ServiceDesc,
	})
	checkHelloSet(t, set)

	if got := svrkit.DescribeFiles(nil); len(got.GetFile()) != 0 {
		t.Errorf("no services described as %d files", len(got.GetFile()))
	}
}

func TestDescriberSeesLaterServices(t *testing.T) {
	var services []*svrkit.ServiceDesc
	d := svrkit.NewDescriber(func() []*svrkit.ServiceDesc { return services })
	set, err := d.Describe(context.Background(), &emptypb.Empty{})
	if err != nil || len(set.GetFile()) != 0 {
		t.Fatalf("empty describer: %v, %v", set, err)
	}
	services = append(services, &hello.Greeter_ServiceDesc)
	set, err = d.Describe(context.Background(), &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	checkHelloSet(t, set)
}

type greeter struct {
	hello.UnimplementedGreeterServer
}

func (greeter) SayHello(_ context.Context, req *hello.HelloRequest) (*hello.HelloReply, error) {
	return &hello.HelloReply{Message: "Hello, " + req.GetName()}, nil
}

// TestDescribeOverRPC serves the describe method on a real server and calls
// it over loopback TCP, next to a generated service.
func TestDescribeOverRPC(t *testing.T) {
	if svrkit.DescribeCmdID != svrkit.ReservedCmdIDBase+1 {
		t.Fatalf("DescribeCmdID = %#x", svrkit.DescribeCmdID)
	}
	srv := svrkit.NewServer()
	hello.RegisterGreeterServer(srv, greeter{})
	described := false
	for _, sd := range srv.Services() {
		described = described || sd.Name == svrkit.DescribeServiceName
	}
	if !described {
		t.Fatal("NewServer does not serve the describe method")
	}
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	client, err := svrkit.NewClient(srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	set, err := svrkit.Describe(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	checkHelloSet(t, set)

	reply, err := hello.NewGreeterClient(client).SayHello(ctx, &hello.HelloRequest{Name: "Ada"})
	if err != nil || reply.GetMessage() != "Hello, Ada" {
		t.Errorf("SayHello: %v, %v", reply, err)
	}
}
