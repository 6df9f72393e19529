package center

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
	"github.com/svrkit/svrkit/svrkit/monitor/monitorpb"
)

// The dashboard: one page (web/index.html and web/app.js) drawing curves
// with uPlot (web/uPlot.iife.min.js, vendored from npm as built; no build
// step), over a small JSON API:
//
//	GET /                    the page
//	GET /static/...          its script, styles and uPlot
//	GET /api/series?q=       points whose name contains q (ListSeries)
//	GET /api/query?name=&from=&to=&per_machine=1&max_points=
//	                         a curve: times (unix seconds) and values, null in gaps
//	GET /api/alerts          firing and recently resolved alerts, and problems
//	GET /metrics             everything in Prometheus's text format
//
// The same queries are RPC methods of MonitorQuery, for programs.

//go:embed web
var web embed.FS

// Handler returns the dashboard's HTTP handler.
func (c *Center) Handler() http.Handler {
	static, _ := fs.Sub(web, "web")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := web.ReadFile("web/index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b)
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /api/series", func(w http.ResponseWriter, r *http.Request) {
		lim, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		writeProto(w, c.ListSeries(&monitorpb.ListSeriesRequest{Query: r.URL.Query().Get("q"), Limit: uint32(max(0, lim))}))
	})
	mux.HandleFunc("GET /api/query", c.serveQuery)
	mux.HandleFunc("GET /api/alerts", func(w http.ResponseWriter, r *http.Request) {
		writeProto(w, c.Alerts())
	})
	mux.HandleFunc("GET /metrics", c.servePrometheus)
	return mux
}

// queryJSON is a curve as the page draws it: uPlot's columns, with null
// where nothing was reported.
type queryJSON struct {
	Series     json.RawMessage `json:"series"`
	Resolution string          `json:"resolution"`
	FromUnixMs int64           `json:"from_unix_ms"`
	StepMs     int64           `json:"step_ms"`
	Clipped    bool            `json:"clipped"`
	Times      []int64         `json:"times"`
	Sum        []*float64      `json:"sum"`
	Machines   []machineJSON   `json:"machines,omitempty"`
}

type machineJSON struct {
	Machine string     `json:"machine"`
	Values  []*float64 `json:"values"`
}

func nullable(vs []float64) []*float64 {
	out := make([]*float64, len(vs))
	for i, v := range vs {
		if !math.IsNaN(v) {
			x := v
			out[i] = &x
		}
	}
	return out
}

func (c *Center) serveQuery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	num := func(k string) int64 {
		v, _ := strconv.ParseInt(q.Get(k), 10, 64)
		return v
	}
	reply, err := c.Query(&monitorpb.QueryRequest{
		Name: q.Get("name"), FromUnixMs: num("from"), ToUnixMs: num("to"),
		PerMachine: q.Get("per_machine") == "1", MaxPoints: uint32(max(0, min(num("max_points"), MaxQueryPoints))),
	})
	if err != nil {
		writeError(w, err)
		return
	}
	series, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(reply.GetSeries())
	out := queryJSON{Series: series, Resolution: reply.GetResolution(), FromUnixMs: reply.GetFromUnixMs(), StepMs: reply.GetStepMs(),
		Clipped: reply.GetClipped(), Sum: nullable(reply.GetSum().GetValues())}
	for i := range out.Sum {
		out.Times = append(out.Times, (reply.GetFromUnixMs()+int64(i)*reply.GetStepMs())/1000)
	}
	for _, m := range reply.GetMachines() {
		out.Machines = append(out.Machines, machineJSON{m.GetMachine(), nullable(m.GetValues())})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func writeProto(w http.ResponseWriter, m proto.Message) {
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, err error) {
	var se *svrkit.Error
	status := http.StatusInternalServerError
	if errors.As(err, &se) {
		status = cgi.HTTPStatus(se.Code())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
