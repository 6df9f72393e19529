package handlers_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb/logicsvr/monitor/handlers"
)

// TestMonitorLogicsvr hosts the center as the generated main does, takes a
// report over binary RPC, answers a query over the HTTP CGI front and
// serves the dashboard at the URL it writes down.
func TestMonitorLogicsvr(t *testing.T) {
	dir := t.TempDir()
	app, _ := json.Marshal(handlers.AppConfig{Dir: dir, Dashboard: "127.0.0.1:0"})
	h, err := logicsvr.New(logicsvr.Config{Name: "monitor", HTTP: "127.0.0.1:0", RPC: "127.0.0.1:0", Admin: "127.0.0.1:0", App: app},
		logicsvr.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ingest, err := handlers.NewMonitorIngest(h)
	if err != nil {
		t.Fatal(err)
	}
	query, err := handlers.NewMonitorQuery(h)
	if err != nil {
		t.Fatal(err)
	}
	monitorpb.RegisterMonitorIngestServer(h, ingest)
	monitorpb.RegisterMonitorQueryServer(h, query)
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	defer h.Shutdown(context.Background())

	c, err := svrkit.NewClient(h.RPCAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	now := time.Now().UnixMilli()
	_, err = monitorpb.NewMonitorIngestClient(c).Report(context.Background(), &monitorpb.ReportRequest{Machine: "m1", UnixMs: now,
		Regions: []*monitorpb.RegionReading{{Instance: 1, Service: "send", StartUnixMs: now, Full: true,
			Decls: []*monitorpb.Decl{{Slot: 0, Id: 1020, Kind: 1, Name: "im.send.messages.text", Unit: "count"}},
			Slots: []uint32{0}, Values: []int64{3}}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Post("http://"+h.HTTPAddr().String()+"/cgi-bin/monitor/series", "application/json", strings.NewReader(`{"query":"send"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "im.send.messages.text") {
		t.Errorf("series CGI: %d %s", res.StatusCode, body)
	}
	url, err := os.ReadFile(filepath.Join(dir, handlers.DashboardURLFile))
	if err != nil {
		t.Fatal(err)
	}
	res, err = http.Get(strings.TrimSpace(string(url)) + "api/query?name=im.send.messages.text")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	var q struct{ Sum []*float64 }
	if err := json.Unmarshal(body, &q); err != nil || res.StatusCode != 200 {
		t.Fatalf("dashboard query: %d %s", res.StatusCode, body)
	}
	var total float64
	for _, v := range q.Sum {
		if v != nil {
			total += *v
		}
	}
	if total != 3 {
		t.Errorf("the dashboard's curve totals %v, want 3", total)
	}
}

func TestMonitorLogicsvrNeedsDir(t *testing.T) {
	h, err := logicsvr.New(logicsvr.Config{Name: "monitor", HTTP: "127.0.0.1:0", RPC: "127.0.0.1:0", Admin: "127.0.0.1:0"},
		logicsvr.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handlers.NewMonitorIngest(h); err == nil || !strings.Contains(err.Error(), `needs "dir"`) {
		t.Errorf("no dir: %v", err)
	}
}
