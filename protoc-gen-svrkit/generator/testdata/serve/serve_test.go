// This file is copied into a temporary module beside the code generated from
// the golden inputs (see TestGeneratedCodeServes): it compiles against the
// generated packages and serves calls through them on loopback TCP.
package serve_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	collide "example.com/golden/collide"
	"example.com/golden/greeter"
	"example.com/golden/in"
	"example.com/golden/keys"
	"example.com/golden/multi"
	othersvrkit "example.com/golden/othersvrkit"
	"example.com/golden/points"
	typespb "example.com/golden/types"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
	"github.com/svrkit/svrkit/svrkit/monitor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type greeterImpl struct {
	greeter.UnimplementedGreeterServer
}

func (greeterImpl) SayHello(_ context.Context, req *greeter.HelloRequest) (*greeter.HelloReply, error) {
	return &greeter.HelloReply{Message: "hello " + req.GetName()}, nil
}

type clockImpl struct {
	multi.UnimplementedClockServer
}

func (clockImpl) Now(context.Context, *emptypb.Empty) (*timestamppb.Timestamp, error) {
	return timestamppb.New(time.Unix(1700000000, 0)), nil
}

type selectImpl struct {
	collide.UnimplementedSelectServer
}

func (selectImpl) Type(_ context.Context, req *in.Req) (*othersvrkit.Resp, error) {
	return &othersvrkit.Resp{Text: "type " + req.GetText()}, nil
}

// invokers serves the services on a binary server and an HTTP front and
// returns an Invoker for each.
func invokers(t *testing.T, register func(r svrkit.Registrar)) map[string]svrkit.Invoker {
	t.Helper()
	srv := svrkit.NewServer()
	register(srv)
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

	h := cgi.NewHandler()
	register(h)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return map[string]svrkit.Invoker{"rpc": client, "http": cgi.NewClient(hs.URL, nil)}
}

func TestGreeter(t *testing.T) {
	for name, inv := range invokers(t, func(r svrkit.Registrar) { greeter.RegisterGreeterServer(r, greeterImpl{}) }) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c := greeter.NewGreeterClient(inv)
		reply, err := c.SayHello(ctx, &greeter.HelloRequest{UserId: 42, Name: "Ada"})
		if err != nil || reply.GetMessage() != "hello Ada" {
			t.Errorf("%s: SayHello: %v, %v", name, reply, err)
		}
		if _, err := c.SayGoodbye(ctx, &greeter.GoodbyeRequest{UserId: 42}); svrkit.CodeOf(err) != svrkit.Unimplemented {
			t.Errorf("%s: unimplemented SayGoodbye: %v", name, err)
		}
	}
}

func TestGreeterDesc(t *testing.T) {
	sd := &greeter.Greeter_ServiceDesc
	if sd.Name != "golden.greeter.Greeter" || sd.Logicsvr != "hello" || len(sd.Methods) != 3 {
		t.Fatalf("service desc %+v", sd)
	}
	m := sd.Methods[0]
	if m.CmdID != 1 || m.FullName != "/golden.greeter.Greeter/SayHello" || m.CGIPath != "/cgi-bin/micromsg-bin/sayhello" ||
		m.Timeout != 250*time.Millisecond || !m.Idempotent || !m.NonBlocking || m.Priority != 200 {
		t.Errorf("SayHello desc %+v", m)
	}
	if m := sd.Methods[1]; m.Timeout != 800*time.Millisecond || m.Idempotent || m.Priority != 0 {
		t.Errorf("SayGoodbye desc takes the service timeout only: %+v", m)
	}
	if got := m.RoutingKey(&greeter.HelloRequest{UserId: 42}); got != "42" {
		t.Errorf("routing key %q", got)
	}
	if _, ok := m.NewRequest().(*greeter.HelloRequest); !ok {
		t.Error("NewRequest type")
	}
	if _, ok := m.NewResponse().(*greeter.HelloReply); !ok {
		t.Error("NewResponse type")
	}
	// A generic caller finds the service's descriptors by its name.
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(sd.Name))
	if err != nil {
		t.Fatal(err)
	}
	if svc, ok := d.(protoreflect.ServiceDescriptor); !ok || svc.Methods().Len() != len(sd.Methods) {
		t.Errorf("descriptor of %s: %v", sd.Name, d)
	}
}

func TestRoutingKeys(t *testing.T) {
	req := &keys.Req{
		S: "s", B: []byte("b"), T: true, I32: -32, S32: -33, Sf32: -34, I64: -64, S64: -65, Sf64: -66,
		U32: 32, F32: 33, U64: 64, F64: 65, Fl: 1.5, Db: 2.25, Color: keys.Req_COLOR_RED,
		Opt: proto.Uint64(7), Who: &keys.Req_Uid{Uid: 99},
	}
	for _, tc := range []struct {
		sd   *svrkit.ServiceDesc
		want string
	}{
		{&keys.KeyString_ServiceDesc, "s"}, {&keys.KeyBytes_ServiceDesc, "b"}, {&keys.KeyBool_ServiceDesc, "true"},
		{&keys.KeyInt32_ServiceDesc, "-32"}, {&keys.KeySint32_ServiceDesc, "-33"}, {&keys.KeySfixed32_ServiceDesc, "-34"},
		{&keys.KeyInt64_ServiceDesc, "-64"}, {&keys.KeySint64_ServiceDesc, "-65"}, {&keys.KeySfixed64_ServiceDesc, "-66"},
		{&keys.KeyUint32_ServiceDesc, "32"}, {&keys.KeyFixed32_ServiceDesc, "33"}, {&keys.KeyUint64_ServiceDesc, "64"},
		{&keys.KeyFixed64_ServiceDesc, "65"}, {&keys.KeyFloat_ServiceDesc, "1.5"}, {&keys.KeyDouble_ServiceDesc, "2.25"},
		{&keys.KeyEnum_ServiceDesc, "1"}, {&keys.KeyOptional_ServiceDesc, "7"}, {&keys.KeyOneof_ServiceDesc, "99"},
	} {
		if got := tc.sd.Methods[0].RoutingKey(req); got != tc.want {
			t.Errorf("%s: routing key %q, want %q", tc.sd.Name, got, tc.want)
		}
	}
	// Through a nested message; an unset one gives the zero value's key.
	account := &multi.Account_ServiceDesc
	if got := account.Methods[0].RoutingKey(&multi.RegisterRequest{Header: &typespb.Header{Uin: 5}}); got != "5" {
		t.Errorf("header.uin key %q", got)
	}
	if got := account.Methods[1].RoutingKey(&multi.Profile_Query{}); got != "0" {
		t.Errorf("unset header key %q", got)
	}
}

func TestWellKnownTypesAndKeywords(t *testing.T) {
	for name, inv := range invokers(t, func(r svrkit.Registrar) {
		multi.RegisterClockServer(r, clockImpl{})
		collide.RegisterSelectServer(r, selectImpl{})
	}) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ts, err := multi.NewClockClient(inv).Now(ctx, &emptypb.Empty{})
		if err != nil || ts.GetSeconds() != 1700000000 {
			t.Errorf("%s: Now: %v, %v", name, ts, err)
		}
		resp, err := collide.NewSelectClient(inv).Type(ctx, &in.Req{Text: "x"})
		if err != nil || resp.GetText() != "type x" {
			t.Errorf("%s: select.type: %v, %v", name, resp, err)
		}
		if _, err := collide.NewSelectClient(inv).Func(ctx, &collide.Context{}); svrkit.CodeOf(err) != svrkit.Unimplemented {
			t.Errorf("%s: select.func: %v", name, err)
		}
	}
	if multi.Clock_ServiceDesc.Methods[0].Timeout != 50*time.Millisecond || multi.Clock_ServiceDesc.Logicsvr != "account" {
		t.Errorf("Clock desc %+v", multi.Clock_ServiceDesc)
	}
}

// TestMonitorPointsDeclared checks that linking a package with monitor
// enums declares its points, with what the IDL says.
func TestMonitorPointsDeclared(t *testing.T) {
	for id, want := range map[monitor.ID]monitor.Decl{
		points.Points_REGISTRATIONS_ID: {ID: 1001, Name: "chat.registrations", Unit: "count", Kind: monitor.Counter, Alert: "sum over 1h < 1"},
		points.Points_ONLINE_ID:        {ID: 1002, Name: "chat.online", Unit: "devices", Kind: monitor.Gauge},
		points.Holder_DEEP_ID:          {ID: 16777215, Name: "chat.deep", Unit: "count", Kind: monitor.Counter, Alert: "sum over 5m / chat.registrations > 5% for 2m"},
	} {
		if got, ok := monitor.Lookup(id); !ok || got != want {
			t.Errorf("Lookup(%d) = %+v, %v; want %+v", id, got, ok, want)
		}
	}
	if err := monitor.Problems(); err != nil {
		t.Errorf("Problems: %v", err)
	}
}
