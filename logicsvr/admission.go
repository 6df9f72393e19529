package logicsvr

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svrkit/svrkit/svrkit"
)

// admissionCollector exports the RPC server's overload control at scrape
// time (svrkit.Server.AdmissionStats): the admission level, the last
// window's queuing time, and what was admitted, shed and dropped unrun per
// business priority. Reading the server's snapshot when scraped costs the
// request path nothing.
type admissionCollector struct {
	srv                                  *svrkit.Server
	level, wait, overloaded              *prometheus.Desc
	admitted, shed, expired, enabledDesc *prometheus.Desc
}

func newAdmissionCollector(srv *svrkit.Server) *admissionCollector {
	return &admissionCollector{
		srv:         srv,
		enabledDesc: prometheus.NewDesc("logicsvr_admission_enabled", "1 when the RPC server runs overload control.", nil, nil),
		level:       prometheus.NewDesc("logicsvr_admission_level", "The RPC server's admission level: requests below (business, user) priority are refused.", []string{"part"}, nil),
		wait:        prometheus.NewDesc("logicsvr_admission_queue_wait_seconds", "Average time requests waited for a worker in the last window.", nil, nil),
		overloaded:  prometheus.NewDesc("logicsvr_admission_overloaded", "1 when the last window's queuing time passed the threshold.", nil, nil),
		admitted:    prometheus.NewDesc("logicsvr_admission_admitted_total", "Requests admitted by the RPC server, by business priority.", []string{"priority"}, nil),
		shed:        prometheus.NewDesc("logicsvr_admission_shed_total", "Requests refused as overloaded by the RPC server, by business priority.", []string{"priority"}, nil),
		expired:     prometheus.NewDesc("logicsvr_admission_expired_total", "Admitted requests dropped unrun because their deadline passed in the queue.", nil, nil),
	}
}

func (c *admissionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.enabledDesc, c.level, c.wait, c.overloaded, c.admitted, c.shed, c.expired} {
		ch <- d
	}
}

func (c *admissionCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.AdmissionStats()
	ch <- prometheus.MustNewConstMetric(c.enabledDesc, prometheus.GaugeValue, b2f(st.Enabled))
	if !st.Enabled {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.level, prometheus.GaugeValue, float64(st.LevelBusiness), "business")
	ch <- prometheus.MustNewConstMetric(c.level, prometheus.GaugeValue, float64(st.LevelUser), "user")
	ch <- prometheus.MustNewConstMetric(c.wait, prometheus.GaugeValue, st.QueueWait.Seconds())
	ch <- prometheus.MustNewConstMetric(c.overloaded, prometheus.GaugeValue, b2f(st.Overloaded))
	ch <- prometheus.MustNewConstMetric(c.expired, prometheus.CounterValue, float64(st.Expired))
	for p := range st.Admitted {
		if st.Admitted[p] == 0 && st.Shed[p] == 0 {
			continue // only the priorities that have been seen
		}
		label := strconv.Itoa(p)
		ch <- prometheus.MustNewConstMetric(c.admitted, prometheus.CounterValue, float64(st.Admitted[p]), label)
		ch <- prometheus.MustNewConstMetric(c.shed, prometheus.CounterValue, float64(st.Shed[p]), label)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
