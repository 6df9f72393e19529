package logicsvr

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/svrkit/svrkit/svrkit"
)

// Metric names, all prefixed logicsvr_. Every call is counted per method
// (label method, its full name, and cmdid) and per transport ("http" for the
// CGI front, "rpc" for binary RPC).
const (
	metricRequests  = "logicsvr_requests_total"
	metricErrors    = "logicsvr_request_errors_total"
	metricDuration  = "logicsvr_request_duration_seconds"
	metricInFlight  = "logicsvr_requests_in_flight"
	metricPanics    = "logicsvr_panics_total"
	metricHTTPResp  = "logicsvr_http_responses_total"
	metricBuildInfo = "logicsvr_build_info"
	metricReady     = "logicsvr_ready"
)

// latencyBuckets span 100µs to 10s: a CGI answered from memory is a few
// hundred microseconds, one that calls storage a few milliseconds, and
// anything near the top is a timeout.
var latencyBuckets = []float64{
	.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10,
}

// metrics is a Host's Prometheus registry. It is the host's own, not the
// global default registry, so that several hosts (tests, benchmarks) can live
// in one process.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	panics   *prometheus.CounterVec
	httpResp *prometheus.CounterVec
	ready    prometheus.Gauge

	mu         sync.Mutex
	httpStatus map[int]prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRequests, Help: "Calls handled, by method and transport.",
		}, []string{"method", "cmdid", "transport"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricErrors, Help: "Calls that failed, by method, transport and status code.",
		}, []string{"method", "cmdid", "transport", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: metricDuration, Help: "Call latency from decoded request to response, by method and transport.",
			Buckets: latencyBuckets,
		}, []string{"method", "cmdid", "transport"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPanics, Help: "Handler panics, answered with an internal error.",
		}, []string{"method", "cmdid"}),
		httpResp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricHTTPResp, Help: "HTTP responses of the CGI front by status, including requests refused before reaching a method.",
		}, []string{"status"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricReady, Help: "1 while the Logicsvr is ready for traffic, 0 while starting or draining.",
		}),
		httpStatus: map[int]prometheus.Counter{},
	}
	m.reg.MustRegister(m.requests, m.errors, m.duration, m.panics, m.httpResp, m.ready,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) setBuildInfo(bi *BuildInfo) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: metricBuildInfo, Help: "Always 1; the labels say what is running.",
		ConstLabels: prometheus.Labels{
			"logicsvr": bi.Logicsvr, "version": bi.Version, "goversion": bi.GoVersion, "revision": bi.Revision,
		},
	})
	g.Set(1)
	m.reg.MustRegister(g)
}

// httpStatusCounter returns the counter of one HTTP status, cached: the
// front answers a handful of distinct statuses.
func (m *metrics) httpStatusCounter(status int) prometheus.Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.httpStatus[status]
	if c == nil {
		c = m.httpResp.WithLabelValues(strconv.Itoa(status))
		m.httpStatus[status] = c
	}
	return c
}

// transportMetrics are one method's series on one transport, resolved once
// at registration so a call pays no label lookup.
type transportMetrics struct {
	name     string
	requests prometheus.Counter
	duration prometheus.Observer
	errors   *prometheus.CounterVec
	labels   [2]string // method, cmdid
}

func (m *metrics) forMethod(md *svrkit.MethodDesc, transport string) *transportMetrics {
	cmdid := strconv.FormatUint(uint64(md.CmdID), 10)
	return &transportMetrics{
		name:     transport,
		requests: m.requests.WithLabelValues(md.FullName, cmdid, transport),
		duration: m.duration.WithLabelValues(md.FullName, cmdid, transport),
		errors:   m.errors,
		labels:   [2]string{md.FullName, cmdid},
	}
}

func (t *transportMetrics) failed(code svrkit.Code) {
	t.errors.WithLabelValues(t.labels[0], t.labels[1], t.name, code.String()).Inc()
}
