package logicsvr

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestAppConfigAndShutdownHooks(t *testing.T) {
	cfg, err := parseConfig([]byte(`{"http": "127.0.0.1:0", "rpc": "127.0.0.1:0", "admin": "127.0.0.1:0",
		"app": {"data_dir": "/tmp/x", "cache_size": 10}}`))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if h.InfoOnly() {
		t.Error("InfoOnly on a serving host")
	}
	app := struct {
		DataDir   string `json:"data_dir"`
		CacheSize int    `json:"cache_size"`
		Secret    string `json:"secret"`
	}{Secret: "default"}
	if err := h.AppConfig(&app); err != nil {
		t.Fatal(err)
	}
	if app.DataDir != "/tmp/x" || app.CacheSize != 10 || app.Secret != "default" {
		t.Errorf("AppConfig = %+v", app)
	}
	var wrong struct {
		DataDir string `json:"data_dir"`
	}
	if err := h.AppConfig(&wrong); err == nil || !strings.Contains(err.Error(), "cache_size") {
		t.Errorf("AppConfig with an unknown field: %v", err)
	}

	var order []int
	h.OnShutdown(func(context.Context) error { order = append(order, 1); return nil })
	h.OnShutdown(func(context.Context) error { order = append(order, 2); return errors.New("disk gone") })
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	err = h.Shutdown(context.Background())
	if !slices.Equal(order, []int{2, 1}) {
		t.Errorf("hooks ran in order %v, want [2 1]", order)
	}
	if err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Errorf("Shutdown = %v, want the hook's error", err)
	}
}
