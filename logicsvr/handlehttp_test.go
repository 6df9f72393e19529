package logicsvr_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/hello"
	"github.com/svrkit/svrkit/logicsvr"
)

// TestHandleHTTP: a plain handler beside the CGIs gets the requests its
// pattern matches, behind the front's middleware; everything else still
// reaches the CGIs; a Logicsvr with only such a handler listens on HTTP.
func TestHandleHTTP(t *testing.T) {
	h, err := logicsvr.New(logicsvr.Config{Name: "files", HTTP: "127.0.0.1:0", RPC: "127.0.0.1:0", Admin: "127.0.0.1:0"},
		logicsvr.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	hello.RegisterGreeterServer(h, greeter{})
	h.HandleHTTP("GET /files/{name}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader("contents of "+r.PathValue("name")))
	}))
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	base := "http://" + h.HTTPAddr().String()

	req, _ := http.NewRequest("GET", base+"/files/a.txt", nil)
	req.Header.Set("Range", "bytes=9-")
	req.Header.Set("X-Request-Id", "req-42")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusPartialContent || string(body) != "of a.txt" || res.Header.Get("X-Request-Id") != "req-42" {
		t.Fatalf("GET /files/a.txt: %d %q, request id %q", res.StatusCode, body, res.Header.Get("X-Request-Id"))
	}
	// The CGIs are where they were.
	res, err = http.Post(base+"/cgi-bin/hello/sayhello", "application/json", strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "Hello, Ada!") {
		t.Fatalf("the CGI answered %d %s", res.StatusCode, body)
	}
	// A method the pattern does not take goes to the CGI front, which
	// knows no such route.
	res, err = http.Post(base+"/files/a.txt", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /files/a.txt: %d, want 404 from the CGI front", res.StatusCode)
	}
	// Counted with the front's responses.
	if got := metric(t, h.AdminAddr().String(), `logicsvr_http_responses_total{status="206"}`); got != 1 {
		t.Errorf("206 responses counted: %v, want 1", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("HandleHTTP after Start did not panic")
		}
	}()
	h.HandleHTTP("GET /late", http.NotFoundHandler())
}

func TestHandleHTTPAloneServesHTTP(t *testing.T) {
	h, err := logicsvr.New(logicsvr.Config{Name: "files", HTTP: "127.0.0.1:0", RPC: "127.0.0.1:0", Admin: "127.0.0.1:0"},
		logicsvr.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	h.HandleHTTP("GET /ping", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "pong") }))
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	if h.HTTPAddr() == nil {
		t.Fatal("no HTTP listener for a Logicsvr whose only HTTP is a HandleHTTP handler")
	}
	status, body := get(t, "http://"+h.HTTPAddr().String()+"/ping")
	if status != http.StatusOK || string(body) != "pong" {
		t.Fatalf("GET /ping: %d %q", status, body)
	}
}
