package logicsvr_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/hello"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

type greeter struct {
	hello.UnimplementedGreeterServer
}

func (greeter) SayHello(ctx context.Context, req *hello.HelloRequest) (*hello.HelloReply, error) {
	logicsvr.Logger(ctx).Debug("greeting", "name", req.GetName())
	return &hello.HelloReply{Message: "Hello, " + req.GetName() + "!"}, nil
}

// A Logicsvr embedded by hand: what a generated main does through
// logicsvr.Main, minus flags and signals.
func Example() {
	h, err := logicsvr.New(logicsvr.Config{
		Name:  "hello",
		HTTP:  "127.0.0.1:0",
		RPC:   "127.0.0.1:0",
		Admin: "127.0.0.1:0",
	}, logicsvr.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	hello.RegisterGreeterServer(h, greeter{}) // served over HTTP and RPC
	if err := h.Start(); err != nil {
		panic(err)
	}
	defer h.Shutdown(context.Background())

	// HTTP: the CGI path from the IDL, in JSON.
	res, err := http.Post("http://"+h.HTTPAddr().String()+"/cgi-bin/hello/sayhello",
		"application/json", strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, string(body))

	// Binary RPC: the generated client.
	c, err := svrkit.NewClient(h.RPCAddr().String())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	out, err := hello.NewGreeterClient(c).SayHello(context.Background(), &hello.HelloRequest{Name: "Grace"})
	if err != nil {
		panic(err)
	}
	fmt.Println(out.GetMessage())

	// Readiness, as a load balancer sees it.
	res, err = http.Get("http://" + h.AdminAddr().String() + "/readyz")
	if err != nil {
		panic(err)
	}
	res.Body.Close()
	fmt.Println("ready:", res.StatusCode)
	// Output:
	// 200 {"message":"Hello, Ada!"}
	// Hello, Grace!
	// ready: 200
}

// Handlers call other services through the host's clients: endpoints come
// from the config's routing table, and the request id of the call being
// handled goes along.
func ExampleHost_Client() {
	h, err := logicsvr.New(logicsvr.Config{
		Name:   "frontend",
		Routes: map[string][]string{"hello.Greeter": {"127.0.0.1:7070"}},
	})
	if err != nil {
		panic(err)
	}
	inv, err := h.Client(hello.Greeter_ServiceName)
	if err != nil {
		panic(err)
	}
	greeter := hello.NewGreeterClient(inv)
	_ = greeter // use it in a handler: greeter.SayHello(ctx, ...)

	// A service the routing table does not list is an error at once, so a
	// handler constructor that needs it fails the Logicsvr's start.
	_, err = h.Client("hello.Missing")
	fmt.Println(err)
	// Output:
	// logicsvr frontend: client of hello.Missing: svrkit: unavailable: resolve hello.Missing: svrkit: not_found: service hello.Missing is not in the config's routes
}

// A handler constructor with state of its own: its settings come from the
// config's "app" object, and what it opens is closed by the host's
// shutdown, after the last call has drained. Under -buildinfo (InfoOnly)
// it opens nothing.
func ExampleHost_AppConfig() {
	cfg := logicsvr.Config{Name: "greeter", HTTP: "127.0.0.1:0", RPC: "127.0.0.1:0", Admin: "127.0.0.1:0",
		App: []byte(`{"greeting": "Hi"}`)}
	h, err := logicsvr.New(cfg, logicsvr.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	settings := struct {
		Greeting string `json:"greeting"`
		DataDir  string `json:"data_dir"`
	}{Greeting: "Hello", DataDir: "/var/lib/greeter"} // defaults
	if err := h.AppConfig(&settings); err != nil {
		panic(err)
	}
	fmt.Println(settings.Greeting, settings.DataDir)
	if !h.InfoOnly() {
		// Open the database here; close it after the drain:
		h.OnShutdown(func(context.Context) error {
			fmt.Println("closing the database")
			return nil
		})
	}
	if err := h.Start(); err != nil {
		panic(err)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		panic(err)
	}
	// Output:
	// Hi /var/lib/greeter
	// closing the database
}

// A handler constructor declares, once, a check every method of its service
// needs: here, that a call carries an API key. The interceptor runs on both
// transports, inside the host's own (request id, metrics, limits).
func ExampleHost_Use() {
	newGreeter := func(h *logicsvr.Host) (hello.GreeterServer, error) {
		h.Use(func(ctx context.Context, req proto.Message, m *svrkit.MethodDesc, next svrkit.UnaryHandler) (proto.Message, error) {
			if svrkit.IncomingMetadata(ctx)["x-api-key"] != "secret" {
				return nil, svrkit.NewError(svrkit.Unauthenticated, "missing or wrong API key")
			}
			return next(ctx, req)
		})
		return greeter{}, nil
	}

	h, err := logicsvr.New(logicsvr.Config{Name: "hello", HTTP: "127.0.0.1:0", RPC: "127.0.0.1:0", Admin: "127.0.0.1:0"},
		logicsvr.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	impl, err := newGreeter(h) // what the generated main does
	if err != nil {
		panic(err)
	}
	hello.RegisterGreeterServer(h, impl)
	if err := h.Start(); err != nil {
		panic(err)
	}
	defer h.Shutdown(context.Background())

	for _, key := range []string{"", "secret"} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+h.HTTPAddr().String()+"/cgi-bin/hello/sayhello",
			strings.NewReader(`{"name":"Ada"}`))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("X-Api-Key", key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Println(res.StatusCode, string(body))
	}
	// Output:
	// 401 {"code":"unauthenticated","message":"missing or wrong API key"}
	// 200 {"message":"Hello, Ada!"}
}
