package embedded_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/svrkit/svrkit/svrkit/queue/embedded"
	"github.com/svrkit/svrkit/svrkit/queue/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func start(t *testing.T, cfg embedded.Config) (*embedded.Server, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := embedded.Start(ctx, cfg)
	if err == nil {
		t.Cleanup(s.Shutdown)
	}
	return s, err
}

func TestStartRefusesBadConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		cfg  embedded.Config
		want string
	}{
		{"no credentials", embedded.Config{Dir: dir, Listen: "127.0.0.1:0"}, "no anonymous client"},
		{"password without user", embedded.Config{Dir: dir, Listen: "127.0.0.1:0", Password: "p"}, "no anonymous client"},
		{"token and password", embedded.Config{Dir: dir, Listen: "127.0.0.1:0", Token: "t", User: "u", Password: "p"}, "not both"},
		{"no dir", embedded.Config{Listen: "127.0.0.1:0", Token: "t"}, "Dir is required"},
		{"bad listen", embedded.Config{Dir: dir, Listen: "nowhere", Token: "t"}, "Listen"},
		{"port in use", embedded.Config{Dir: dir, Listen: busy.Addr().String(), Token: "t"}, "address already in use"},
		{"cluster without credentials", embedded.Config{Dir: dir, Listen: "127.0.0.1:0", Token: "t",
			Cluster: &embedded.Cluster{Name: "c", Listen: "127.0.0.1:0"}}, "user and password for its routes"},
		{"bad route", embedded.Config{Dir: dir, Listen: "127.0.0.1:0", Token: "t",
			Cluster: &embedded.Cluster{Name: "c", Listen: "127.0.0.1:0", Routes: []string{"nowhere"}, User: "u", Password: "p"}}, "route"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			begin := time.Now()
			_, err := start(t, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if tc.name == "no credentials" && !errors.Is(err, embedded.ErrNoCredentials) {
				t.Errorf("%v is not ErrNoCredentials", err)
			}
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("took %v to fail", d)
			}
		})
	}
}

func TestServerAuthenticatesClients(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     embedded.Config
		good    []nats.Option
		badOnes [][]nats.Option
	}{
		{"token", embedded.Config{Token: "s3cret"}, []nats.Option{nats.Token("s3cret")},
			[][]nats.Option{nil, {nats.Token("wrong")}, {nats.UserInfo("s3cret", "")}}},
		{"user and password", embedded.Config{User: "svc", Password: "pw"}, []nats.Option{nats.UserInfo("svc", "pw")},
			[][]nats.Option{nil, {nats.UserInfo("svc", "wrong")}, {nats.Token("pw")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Dir, cfg.Listen = filepath.Join(t.TempDir(), "q"), "127.0.0.1:0"
			s, err := start(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(s.URL(), "nats://127.0.0.1:") {
				t.Errorf("URL %s: not on loopback", s.URL())
			}
			if err := s.Healthy(); err != nil {
				t.Errorf("Healthy: %v", err)
			}
			nc, err := nats.Connect(s.URL(), tc.good...)
			if err != nil {
				t.Fatalf("with the credentials: %v", err)
			}
			nc.Close()
			for _, bad := range tc.badOnes {
				if nc, err := nats.Connect(s.URL(), bad...); err == nil {
					nc.Close()
					t.Errorf("connected with %d wrong options", len(bad))
				}
			}
			s.Shutdown()
			if err := s.Healthy(); err == nil {
				t.Error("Healthy after Shutdown")
			}
			s.Shutdown() // twice is fine
		})
	}
}
