package cgi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/svrkit/svrkit/examples/hello"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
)

type greeter struct {
	hello.UnimplementedGreeterServer
}

func (greeter) SayHello(_ context.Context, req *hello.HelloRequest) (*hello.HelloReply, error) {
	if req.GetName() == "" {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "name is required")
	}
	return &hello.HelloReply{Message: "Hello, " + req.GetName() + "!"}, nil
}

// A generated service registers with a Handler as with a binary server; any
// HTTP client can then call it with JSON, at its CGI path or its Connect
// route.
func Example() {
	h := cgi.NewHandler()
	hello.RegisterGreeterServer(h, greeter{})
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, path := range []string{"/cgi-bin/hello/sayhello", "/hello.Greeter/SayHello"} {
		res, err := http.Post(srv.URL+path, "application/json", strings.NewReader(`{"name":"Ada"}`))
		if err != nil {
			panic(err)
		}
		var reply struct{ Message string }
		_ = json.NewDecoder(res.Body).Decode(&reply)
		res.Body.Close()
		fmt.Println(res.StatusCode, reply.Message)
	}

	// Errors carry their code in Connect's JSON shape.
	res, err := http.Post(srv.URL+"/cgi-bin/hello/sayhello", "application/json", strings.NewReader(`{}`))
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, string(body))

	// Output:
	// 200 Hello, Ada!
	// 200 Hello, Ada!
	// 400 {"code":"invalid_argument","message":"name is required"}
}

// A Client lets generated clients call over HTTP instead of binary RPC.
func ExampleClient() {
	h := cgi.NewHandler()
	hello.RegisterGreeterServer(h, greeter{})
	srv := httptest.NewServer(h)
	defer srv.Close()

	client := hello.NewGreeterClient(cgi.NewClient(srv.URL, nil))
	reply, err := client.SayHello(context.Background(), &hello.HelloRequest{Name: "Ada"})
	fmt.Println(reply.GetMessage(), err)

	_, err = client.SayHello(context.Background(), &hello.HelloRequest{})
	fmt.Println(svrkit.CodeOf(err), err)

	// Output:
	// Hello, Ada! <nil>
	// invalid_argument svrkit: invalid_argument: name is required
}
