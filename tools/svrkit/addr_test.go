package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/svrkit/svrkit/tools/svrkit/upstate"
)

// TestAddrAndCallByName finds a service through up's state file, as a
// person does after svrkit up: by instance, topology service or protobuf
// service name, with no port in the command.
func TestAddrAndCallByName(t *testing.T) {
	rpc, httpURL, _ := startTargets(t)
	dir := t.TempDir()
	if code, _, stderr := runCmd(t, dir, "addr", "greet"); code != 1 || !strings.Contains(stderr, "no svrkit up is running there") {
		t.Errorf("addr without up: exit %d, stderr %q", code, stderr)
	}
	err := upstate.Write(filepath.Join(dir, ".data", upstate.FileName), &upstate.State{Instances: []upstate.Instance{
		{Name: "greet", Service: "greet", State: upstate.Ready, HTTP: strings.TrimPrefix(httpURL, "http://"), RPC: rpc, Admin: "127.0.0.1:1", Serves: []string{"hello.Greeter"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args         []string
		code         int
		stdout, errs string
	}{
		{[]string{"addr", "greet"}, 0, strings.TrimPrefix(httpURL, "http://") + "\n", ""},
		{[]string{"addr", "hello.Greeter", "rpc"}, 0, rpc + "\n", ""},
		{[]string{"addr", "-up", ".data/up.json", "greet", "admin"}, 0, "127.0.0.1:1\n", ""},
		{[]string{"addr", "nosuch"}, 1, "", `runs no "nosuch"; it runs [greet]`},
		{[]string{"addr", "greet", "grpc"}, 2, "", "the address is http, rpc or admin"},
		{[]string{"addr"}, 2, "", "usage: svrkit addr"},
		{[]string{"call", "-d", `{"name":"Ada"}`, "greet", "hello.Greeter/SayHello"}, 0, "{\n  \"message\": \", Ada\"\n}\n", ""},
		{[]string{"call", "hello.Greeter", "hello.Greeter/SayHello"}, 0, "{\n  \"message\": \", \"\n}\n", ""},
		{[]string{"call", "-up", "elsewhere/up.json", "greet", "hello.Greeter/SayHello"}, 1, "", "no svrkit up is running there"},
	} {
		code, stdout, stderr := runCmd(t, dir, tc.args...)
		if code != tc.code || stdout != tc.stdout || !strings.Contains(stderr, tc.errs) {
			t.Errorf("svrkit %q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q", tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.errs)
		}
	}
}
