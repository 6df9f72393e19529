// Package rpctest serves svrkit services on loopback for the IM
// handlers' tests: a real server and a real client, so that a test's
// calls cross the wire — framing, codes, routing by key — as they do in a
// deployment, with only the far side's logic written by the test.
package rpctest

import (
	"context"
	"testing"
	"time"

	"github.com/svrkit/svrkit/svrkit"
)

// Serve starts a svrkit server on a free loopback port with the services
// register adds (im.RegisterXxxServer), stops it when the test ends, and
// returns its address.
func Serve(t testing.TB, register func(svrkit.Registrar)) string {
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
	return srv.Addr().String()
}

// Dial returns a client of target — an address, or several
// comma-separated, among which calls are routed by key — closed when the
// test ends (before the servers Serve started earlier stop).
func Dial(t testing.TB, target string) *svrkit.Client {
	t.Helper()
	c, err := svrkit.NewClient(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
