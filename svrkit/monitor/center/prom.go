package center

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
)

// The Prometheus export: every series on every machine, in the text
// exposition format, for users who scrape the center with Prometheus and
// draw with Grafana. A point im.messages_sent.text becomes
// svrkit_monitor_im_messages_sent_text (with _total for a counter); the
// labels of a framework series (svrkit.server.calls{method="/a.B/C"}) stay
// labels; every sample gets machine="...". A counter is the total since the
// center started (Prometheus takes a center restart as a counter reset); a
// gauge is its last level, dropped once its machine has been silent for a
// minute.

var promUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// splitSeriesName splits name{labels} into its base and label text.
func splitSeriesName(name string) (base, labels string) {
	if i := strings.IndexByte(name, '{'); i >= 0 && strings.HasSuffix(name, "}") {
		return name[:i], name[i+1 : len(name)-1]
	}
	return name, ""
}

// WritePrometheus writes the exposition.
func (c *Center) WritePrometheus(w io.Writer) error {
	nowMs := c.cfg.Now().UnixMilli()
	type sample struct {
		labels string
		value  int64
	}
	type family struct {
		kind    uint32
		unit    string
		samples []sample
	}
	fams := map[string]*family{}
	c.mu.Lock()
	for k, t := range c.totals {
		s := c.series[k[0]-1]
		if s.Kind == kindGauge && nowMs-t.lastMs > 60_000 {
			continue
		}
		base, labels := splitSeriesName(s.Name)
		name := "svrkit_monitor_" + promUnsafe.ReplaceAllString(base, "_")
		if s.Kind == kindCounter {
			name += "_total"
		}
		f := fams[name]
		if f == nil {
			f = &family{kind: s.Kind, unit: s.Unit}
			fams[name] = f
		}
		machine := `machine="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(c.machineNames[k[1]-1]) + `"`
		if labels != "" {
			labels = machine + "," + labels
		} else {
			labels = machine
		}
		f.samples = append(f.samples, sample{labels, t.value})
	}
	c.mu.Unlock()
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := fams[n]
		typ := "counter"
		if f.kind == kindGauge {
			typ = "gauge"
		}
		if _, err := fmt.Fprintf(w, "# HELP %s svrkit monitor point, unit %s.\n# TYPE %s %s\n", n, f.unit, n, typ); err != nil {
			return err
		}
		sort.Slice(f.samples, func(i, j int) bool { return f.samples[i].labels < f.samples[j].labels })
		for _, s := range f.samples {
			if _, err := fmt.Fprintf(w, "%s{%s} %d\n", n, s.labels, s.value); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Center) servePrometheus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_ = c.WritePrometheus(w)
}
