package svrkit_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
)

// A server and a client over loopback. Generated code supplies the
// ServiceDesc and a typed client; here the test service's descriptor stands
// in for it.
func Example() {
	srv := svrkit.NewServer()
	srv.RegisterService(&testDesc, &testService{})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	client, err := svrkit.NewClient(srv.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp := new(wrapperspb.BytesValue)
	if err := client.Invoke(ctx, methodByCmd(cmdEcho), wrapperspb.Bytes([]byte("hello")), resp); err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(resp.Value))
	// Output: hello
}

// Errors carry a code across the wire; match on the code, not the text.
func ExampleCodeOf() {
	err := fmt.Errorf("loading profile: %w", svrkit.NewError(svrkit.NotFound, "no such user"))
	fmt.Println(svrkit.CodeOf(err))
	// Output: not_found
}

// A handler wraps the error of the layer below with %w: the caller gets
// the code and the message, and errors.Is still finds the cause on this
// side.
func ExampleErrorf() {
	errNoRow := errors.New("no such row")
	err := svrkit.Errorf(svrkit.NotFound, "profile of user %d: %w", 42, errNoRow)
	fmt.Println(svrkit.CodeOf(err), errors.Is(err, errNoRow))
	fmt.Println(err)
	// Output:
	// not_found true
	// svrkit: not_found: profile of user 42: no such row
}

// A routing file names each service's endpoints; clients created with the
// table as resolver follow its changes without a restart.
func ExampleLoadRouteTable() {
	dir, err := os.MkdirTemp("", "routes")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "routes.json")
	if err := os.WriteFile(path, []byte(`{"services": {"im.MessageStore": ["10.0.0.1:7101", "10.0.0.2:7101"]}}`), 0o644); err != nil {
		log.Fatal(err)
	}
	routes, err := svrkit.LoadRouteTable(path, time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer routes.Close()
	fmt.Println(routes.Resolve("im.MessageStore"))
	// Output: [10.0.0.1:7101 10.0.0.2:7101] <nil>
}

// A replica that is not its group's leader sends the caller to the one
// that is; a svrkit Client follows such redirects by itself when the
// endpoint is one of its own.
func ExampleRedirect() {
	err := svrkit.Redirect("10.0.0.2:7001", "not the leader")
	addr, ok := svrkit.RedirectOf(err)
	fmt.Println(svrkit.CodeOf(err), addr, ok)
	// Output: unavailable 10.0.0.2:7001 true
}
