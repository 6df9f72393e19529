package handlers

import (
	"testing"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/svrkit"
)

// The fan-out's calls go above every send and below login (see
// Priority), whatever the IDL's priorities become.
func TestFanoutPriority(t *testing.T) {
	for _, m := range []struct {
		d    *svrkit.ServiceDesc
		name string
	}{
		{&im.Send_ServiceDesc, im.Send_SendText_FullMethodName},
		{&im.Send_ServiceDesc, im.Send_SendVoice_FullMethodName},
		{&im.Send_ServiceDesc, im.Send_SendGroupText_FullMethodName},
		{&im.Send_ServiceDesc, im.Send_SendGroupVoice_FullMethodName},
	} {
		if p := methodPriority(t, m.d, m.name); Priority <= int(p) {
			t.Errorf("fan-out priority %d is not above %s's %d", Priority, m.name, p)
		}
	}
	if p := methodPriority(t, &im.Account_ServiceDesc, im.Account_Login_FullMethodName); Priority >= int(p) {
		t.Errorf("fan-out priority %d is not below login's %d", Priority, p)
	}
}

func methodPriority(t *testing.T, d *svrkit.ServiceDesc, fullName string) uint8 {
	t.Helper()
	for _, m := range d.Methods {
		if m.FullName == fullName {
			return m.Priority
		}
	}
	t.Fatalf("no method %s", fullName)
	return 0
}
