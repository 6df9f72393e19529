package link

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/svrkit/svrkit/examples/im"
	svrkitpb "github.com/svrkit/svrkit/idl/svrkit"
	"github.com/svrkit/svrkit/svrkit"
)

// TestDefaultRoutes pins the numbers the package doc promises clients:
// they are part of the client API.
func TestDefaultRoutes(t *testing.T) {
	for _, tc := range []struct {
		cmd  uint32
		name string
	}{
		{101, "im.Account/Register"},
		{102, "im.Account/Login"},
		{103, "im.Account/GetProfile"},
		{104, "im.Account/SetProfile"},
		{201, "im.Contact/AddContact"},
		{202, "im.Contact/RemoveContact"},
		{203, "im.Contact/ListContacts"},
		{301, "im.Send/SendText"},
		{302, "im.Send/SendVoice"},
		{401, "im.Sync/Sync"},
	} {
		rt := Default.ByCmdID(tc.cmd)
		if rt == nil || rt.Name() != tc.name {
			t.Errorf("link cmdid %d is %v, want %s", tc.cmd, rt, tc.name)
			continue
		}
		if Default.ByName(tc.name) != rt || Default.ByName("/"+tc.name) != rt {
			t.Errorf("%s is not found by name", tc.name)
		}
	}
	if Default.ByCmdID(1) != nil || Default.ByName("im.Send/Nothing") != nil {
		t.Error("unknown cmdid or name found")
	}
	if !strings.Contains(Default.String(), "   301  im.Send/SendText\n") {
		t.Errorf("String:\n%s", Default)
	}
}

// TestEveryClientServiceIsLinked fails for a client-facing service (one with
// a CGI path) of the IM backend that the long link cannot reach: every such
// service needs a link base in its .proto and a place in Services.
func TestEveryClientServiceIsLinked(t *testing.T) {
	var linked []string
	for _, sd := range Services {
		linked = append(linked, sd.Name)
	}
	found := 0
	protoregistry.GlobalFiles.RangeFilesByPackage("im", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			client := false
			for j := 0; j < sd.Methods().Len(); j++ {
				mo, _ := proto.GetExtension(sd.Methods().Get(j).Options(), svrkitpb.E_Method).(*svrkitpb.MethodOptions)
				client = client || mo.GetCgiPath() != ""
			}
			if !client {
				continue
			}
			found++
			if !slices.Contains(linked, string(sd.FullName())) {
				t.Errorf("client-facing service %s is not on the long link: give it option (im.link).base in %s and add it to link.Services",
					sd.FullName(), fd.Path())
			}
		}
		return true
	})
	if found < 4 {
		t.Fatalf("found %d client-facing services in package im; the registry walk is broken", found)
	}
}

func TestNewRoutesErrors(t *testing.T) {
	unlinked := im.Storage_ServiceDesc
	if _, err := NewRoutes([]*svrkit.ServiceDesc{&unlinked}); err == nil || !strings.Contains(err.Error(), "no link base") {
		t.Errorf("a service without a base: %v", err)
	}
	if _, err := NewRoutes([]*svrkit.ServiceDesc{&im.Send_ServiceDesc, &im.Send_ServiceDesc}); err == nil || !strings.Contains(err.Error(), "both have link cmdid 301") {
		t.Errorf("a collision: %v", err)
	}
	big := im.Send_ServiceDesc
	big.Methods = slices.Clone(big.Methods)
	big.Methods[0].CmdID = 100
	if _, err := NewRoutes([]*svrkit.ServiceDesc{&big}); err == nil || !strings.Contains(err.Error(), "below 100") {
		t.Errorf("a cmdid over the step: %v", err)
	}
}

func TestCloseCodes(t *testing.T) {
	for _, c := range []svrkit.Code{svrkit.InvalidArgument, svrkit.Aborted, svrkit.Unauthenticated, svrkit.Unavailable} {
		got, ok := CodeOfClose(CloseCode(c))
		if !ok || got != c {
			t.Errorf("code %v → close %d → %v, %v", c, CloseCode(c), got, ok)
		}
	}
	if _, ok := CodeOfClose(1000); ok {
		t.Error("1000 (normal closure) read as a goaway status")
	}
	if CloseCode(svrkit.AppCodeBase+5) != 4002 {
		t.Errorf("an application code closes with %d, want 4002 (unknown)", CloseCode(svrkit.AppCodeBase+5))
	}
	if !IsFinal(svrkit.Aborted) || !IsFinal(svrkit.Unauthenticated) || IsFinal(svrkit.Unavailable) {
		t.Error("IsFinal")
	}
}

func TestParseMessage(t *testing.T) {
	m, err := ParseMessage([]byte(`{"type":"response","id":7,"code":"not_found","message":"no user 42","extra":1}`))
	if err != nil || m.ID != 7 || svrkit.CodeOf(m.Err()) != svrkit.NotFound || m.Err().Error() == "" {
		t.Fatalf("ParseMessage = %+v, %v", m, err)
	}
	ok, _ := ParseMessage([]byte(`{"type":"response","id":1,"body":{}}`))
	if ok.Err() != nil {
		t.Errorf("a response without code has error %v", ok.Err())
	}
	for _, bad := range []string{``, `[]`, `{}`, `{"type":1}`, `"auth"`, `{"type":"auth"`} {
		if _, err := ParseMessage([]byte(bad)); err == nil {
			t.Errorf("ParseMessage(%q) succeeded", bad)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"type":"auth","token":"abc","device_id":"web"}`))
	f.Add([]byte(`{"type":"request","id":1,"cmd":301,"body":{"toUserId":"2","text":"hi"}}`))
	f.Add([]byte(`{"type":"ping","id":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err == nil && m.Type == "" {
			t.Fatal("accepted a message without a type")
		}
	})
}
