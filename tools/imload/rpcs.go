package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RPCs per delivered message: every call the Logicsvrs served during the
// run, both transports, over delivered messages. Unlike messages per
// second and CPU, the count does not move with the machine's other load,
// so it is the figure that says whether a change took hops out of a
// message's path (issue #13). imload reads each instance's
// logicsvr_request_duration_seconds_count from its admin port's /metrics
// before and after the run.

// requestCountMetric is the Prometheus series every Logicsvr counts its
// served calls in (package logicsvr's metrics).
const requestCountMetric = "logicsvr_request_duration_seconds_count"

// admins are the backend instances' admin addresses, by instance name.
type admins map[string]string

// served returns the calls each instance has served so far, by instance
// name; an instance whose /metrics does not answer (a process that is not
// a Logicsvr, such as the queue service, or one that is restarting) is
// left out.
func (a admins) served(ctx context.Context) map[string]float64 {
	var (
		mu  sync.Mutex
		out = map[string]float64{}
		wg  sync.WaitGroup
	)
	for name, addr := range a {
		wg.Go(func() {
			n, err := scrapeCount(ctx, addr)
			if err != nil {
				return
			}
			mu.Lock()
			out[name] = n
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// servedBetween is the calls served between two readings of served, over
// the instances both readings have, and whether there were any.
func servedBetween(before, after map[string]float64) (float64, bool) {
	var n float64
	found := false
	for name, b := range before {
		if a, ok := after[name]; ok && a >= b {
			n += a - b
			found = true
		}
	}
	return n, found
}

// scrapeCount sums requestCountMetric over every label set on one
// instance's /metrics.
func scrapeCount(ctx context.Context, addr string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s/metrics: %s", addr, resp.Status)
	}
	return sumSeries(bufio.NewScanner(resp.Body), requestCountMetric)
}

// sumSeries adds the values of every sample of metric in a Prometheus
// text exposition.
func sumSeries(sc *bufio.Scanner, metric string) (float64, error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var sum float64
	for sc.Scan() {
		line := sc.Text()
		rest, found := strings.CutPrefix(line, metric)
		if !found || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue // another metric, or one whose name only starts so
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", metric, line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}
