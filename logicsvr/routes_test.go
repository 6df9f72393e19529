package logicsvr

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/svrkit/svrkit/svrkit"
)

func TestConfigRoutesReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cfg.json")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"routes": {"a.A": ["127.0.0.1:1"]}}`)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	r := resolverOf(t, cfg)
	notified := make(chan []string, 4)
	stop := r.Watch("a.A", func(addrs []string) { notified <- addrs })
	defer stop()

	// A bad edit (anywhere in the config) is noticed and ignored.
	write(`{"routes": {"a.A": ["127.0.0.1:9"]}, "htpp": ":1"}`)
	rt := r.(*svrkit.RouteTable)
	for deadline := time.Now().Add(10 * time.Second); rt.LastError() == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("bad edit not noticed within 10s")
		}
	}
	if got, _ := r.Resolve("a.A"); !slices.Equal(got, []string{"127.0.0.1:1"}) {
		t.Fatalf("bad edit applied: %v", got)
	}
	// A good one is applied and notified.
	write(`{"routes": {"a.A": ["127.0.0.1:2", "127.0.0.1:3"]}}`)
	select {
	case got := <-notified:
		if !slices.Equal(got, []string{"127.0.0.1:2", "127.0.0.1:3"}) {
			t.Errorf("notified %v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification of the new routes")
	}
}

func TestConfigMadeInCodeHasFixedRoutes(t *testing.T) {
	resolverOf(t, Config{Routes: map[string][]string{"a.A": {"127.0.0.1:1"}}})
}

// resolverOf returns the resolver of cfg, checking that it routes a.A to
// 127.0.0.1:1 and knows no b.B, and stops it when the test ends.
func resolverOf(t *testing.T, cfg Config) svrkit.Resolver {
	t.Helper()
	r, stop, err := newResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	if got, err := r.Resolve("a.A"); err != nil || !slices.Equal(got, []string{"127.0.0.1:1"}) {
		t.Fatalf("Resolve = %v, %v", got, err)
	}
	if _, err := r.Resolve("b.B"); svrkit.CodeOf(err) != svrkit.NotFound {
		t.Fatalf("Resolve of a missing service: %v, want not_found", err)
	}
	return r
}

func TestParseConfigErrors(t *testing.T) {
	for name, raw := range map[string]string{
		"both routes forms": `{"routes": {}, "routes_file": "x.json"}`,
		"empty endpoint":    `{"routes": {"a.A": [""]}}`,
		"unknown field":     `{"listen": ":1"}`,
		"bad duration":      `{"drain_delay": "later"}`,
		"shard not hex":     `{"shards": {"a.A": [{"from": "zz", "group": "a.A/0"}]}}`,
		"shard no group":    `{"shards": {"a.A": [{"from": "0"}]}}`,
	} {
		if _, err := parseConfig([]byte(raw)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	c, err := parseConfig([]byte(`{"drain_timeout": "1.5s", "drain_delay": 2000000000}`))
	if err != nil || time.Duration(c.DrainTimeout) != 1500*time.Millisecond || time.Duration(c.DrainDelay) != 2*time.Second {
		t.Errorf("durations: %+v %v", c, err)
	}
}

// A sharded service's client places each call by its routing key's hash
// on the shard group the config names.
func TestShardedClient(t *testing.T) {
	cfg, err := parseConfig([]byte(`{"name": "t", "rpc": "off", "http": "off", "admin": "off",
		"shards": {"a.A": [{"from": "0", "group": "a.A/0"}, {"from": "8000000000000000", "group": "a.A/1"}]},
		"routes": {"a.A/0": ["127.0.0.1:1"], "a.A/1": ["127.0.0.1:2"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Shutdown(context.Background()) })
	inv, err := h.Client("a.A")
	if err != nil {
		t.Fatal(err)
	}
	si, ok := inv.(*svrkit.ShardedInvoker)
	if !ok {
		t.Fatalf("Client of a sharded service is a %T", inv)
	}
	for _, key := range []string{"0", "1", "42", "7"} {
		want := "a.A/0"
		if svrkit.KeyHash(key) >= 1<<63 {
			want = "a.A/1"
		}
		if got := si.Owner(key).Name; got != want {
			t.Errorf("key %s on %s, want %s", key, got, want)
		}
	}
	if again, _ := h.Client("a.A"); again != inv {
		t.Error("a second Client call made another invoker")
	}
}
