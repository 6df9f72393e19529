package monitor

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor/internal/shm"
)

// The tests share the process's one region, opened by TestMain in a
// temporary directory, with a logger the tests read.

const (
	testCounter ID = 101
	testGauge   ID = 102
	testOther   ID = 103
)

var testLog lockedBuffer

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	dir, err := os.MkdirTemp("", "monitor-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv(EnvDir, dir)
	Declare(
		Decl{ID: testCounter, Name: "test.counter", Unit: "count", Kind: Counter, Alert: "sum over 1m > 10"},
		Decl{ID: testGauge, Name: "test.gauge", Unit: "count", Kind: Gauge},
		Decl{ID: testOther, Name: "test.other", Unit: "count", Kind: Counter},
	)
	if err := Open(Options{Service: "monitortest", Logger: slog.New(slog.NewTextHandler(&testLog, nil))}); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// readRegion returns the values of the region at path by name.
func readRegion(t testing.TB, path string) map[string]int64 {
	t.Helper()
	r, err := shm.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	decls, err := r.Refresh()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, d := range decls {
		v, _ := r.Value(d.Slot)
		out[d.Name] = v
	}
	return out
}

func TestAddSetReachTheRegion(t *testing.T) {
	before := readRegion(t, Region())
	Add(testCounter, 5)
	Add(testCounter, 2)
	Set(testGauge, 42)
	got := readRegion(t, Region())
	if d := got["test.counter"] - before["test.counter"]; d != 7 {
		t.Errorf("counter grew by %d, want 7", d)
	}
	if got["test.gauge"] != 42 {
		t.Errorf("gauge = %d, want 42", got["test.gauge"])
	}
	if d, ok := Lookup(testCounter); !ok || d.Alert != "sum over 1m > 10" {
		t.Errorf("Lookup = %+v, %v", d, ok)
	}
}

func TestUndeclared(t *testing.T) {
	before := readRegion(t, Region())["svrkit.monitor.undeclared"]
	Add(4242, 1)
	Add(4242, 1)
	Set(testCounter, 9) // a counter cannot be Set
	Add(MaxID+1, 1)     // beyond the ID space: no index entry, no crash
	if d := readRegion(t, Region())["svrkit.monitor.undeclared"] - before; d != 4 {
		t.Errorf("undeclared grew by %d, want 4", d)
	}
	log := testLog.String()
	if strings.Count(log, "id=4242") != 1 {
		t.Errorf("undeclared ID 4242 logged %d times, want once:\n%s", strings.Count(log, "id=4242"), log)
	}
	if !strings.Contains(log, "Set on a counter") {
		t.Errorf("Set on a counter not logged:\n%s", log)
	}
}

func TestConflictingDeclarations(t *testing.T) {
	Declare(Decl{ID: testCounter, Name: "test.counter", Unit: "count", Kind: Counter, Alert: "sum over 1m > 10"}) // the same again: fine
	Declare(Decl{ID: testCounter, Name: "test.renamed", Unit: "count", Kind: Counter})
	Declare(Decl{ID: 900, Name: "test.gauge", Unit: "count", Kind: Counter})
	Declare(Decl{ID: 901, Name: "Bad Name", Kind: Counter})
	Declare(Decl{ID: 902, Name: "test.rule", Kind: Counter, Alert: "sum over banana > 1"})
	err := Problems()
	for _, want := range []string{
		"monitor ID 101 is declared twice, differently",
		`monitor name "test.gauge" is declared for IDs 102 and 900`,
		`name "Bad Name" must be dotted lower-case words`,
		"alert rule: column 10: expected a duration",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Problems() = %v, want it to say %q", err, want)
		}
	}
	if d, _ := Lookup(testCounter); d.Name != "test.counter" {
		t.Errorf("the first declaration must win, got %+v", d)
	}
	if err := Open(Options{Service: "another"}); err == nil || !strings.Contains(err.Error(), `already open for service "monitortest"`) {
		t.Errorf("reopening as another service: %v", err)
	}
}

func TestInterceptors(t *testing.T) {
	md := &svrkit.MethodDesc{CmdID: 1, FullName: "/test.S/M"}
	before := readRegion(t, Region()) // the region outlives a test run (-count)
	calls := 0
	for _, fail := range []error{nil, nil, svrkit.NewError(svrkit.Unavailable, "x"), svrkit.NewError(svrkit.AppCodeBase+3, "app")} {
		_, _ = ServerInterceptor(context.Background(), nil, md, func(ctx context.Context, req proto.Message) (proto.Message, error) {
			calls++
			return nil, fail
		})
		if calls == 0 {
			t.Fatal("the interceptor did not call the handler")
		}
		_ = ClientInterceptor(context.Background(), md, nil, nil, func(ctx context.Context, m *svrkit.MethodDesc, req, resp proto.Message) error {
			return fail
		})
	}
	Refused(md, svrkit.ResourceExhausted)
	Refused(nil, svrkit.Unimplemented)
	got := readRegion(t, Region())
	for name, want := range map[string]int64{
		`svrkit.server.refused{method="/test.S/M",code="resource_exhausted"}`: 1,
		`svrkit.server.refused{method="unknown",code="unimplemented"}`:        1,
		`svrkit.server.calls{method="/test.S/M"}`:                             4,
		`svrkit.client.calls{method="/test.S/M"}`:                             4,
		`svrkit.server.errors{method="/test.S/M",code="unavailable"}`:         1,
		`svrkit.server.errors{method="/test.S/M",code="app"}`:                 1,
		`svrkit.client.errors{method="/test.S/M",code="unavailable"}`:         1,
	} {
		if d := got[name] - before[name]; d != want {
			t.Errorf("%s grew by %d, want %d", name, d, want)
		}
	}
	var buckets int64
	for name, v := range got {
		if strings.HasPrefix(name, `svrkit.server.latency_ms{method="/test.S/M"`) {
			buckets += v - before[name]
		}
	}
	if buckets != 4 {
		t.Errorf("latency buckets hold %d calls, want 4", buckets)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		_, _ = ServerInterceptor(context.Background(), nil, md, func(ctx context.Context, req proto.Message) (proto.Message, error) { return nil, nil })
	}); allocs != 0 {
		t.Errorf("ServerInterceptor allocates %v per call, want 0", allocs)
	}
}

func TestSampleProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	SampleProcess(ctx, time.Hour)
	got := readRegion(t, Region())
	if got[`svrkit.process.up{service="monitortest"}`] != 1 || got[`svrkit.process.goroutines{service="monitortest"}`] < 1 {
		t.Errorf("process points %v", got)
	}
}

func TestAddAllocatesNothing(t *testing.T) {
	if allocs := testing.AllocsPerRun(1000, func() { Add(testCounter, 1); Set(testGauge, 1) }); allocs != 0 {
		t.Errorf("Add and Set allocate %v, want 0", allocs)
	}
}

func TestDeclCheck(t *testing.T) {
	for _, d := range []Decl{
		{ID: 0, Name: "a", Kind: Counter},
		{ID: MaxID + 1, Name: "a", Kind: Counter},
		{ID: 1, Name: "a", Kind: 9},
	} {
		if err := d.Check(); err == nil {
			t.Errorf("%+v passed Check", d)
		}
	}
	if err := (Decl{ID: 1, Name: "im.x", Kind: Gauge}).Check(); err != nil {
		t.Error(err)
	}
}
