package logicsvr

import (
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// httpHandler is the CGI front (and HandleHTTP's handlers) behind a thin
// middleware: the request id header, Connection: close while draining,
// and a count of every response by status (including those the front
// refuses before any method runs).
func (h *Host) httpHandler() http.Handler {
	// The statuses the front answers, resolved now so that a response
	// takes no lock; any other goes through the metrics' locked cache.
	statuses := map[int]prometheus.Counter{}
	for _, s := range []int{200, 206, 304, 400, 401, 403, 404, 405, 409, 413, 415, 416, 429, 499, 500, 501, 503, 504} {
		statuses[s] = h.metrics.httpStatusCounter(s)
	}
	extra := h.httpExtra // complete: the host has started
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			id = newRequestID()
			r.Header.Set("X-Request-Id", id)
		}
		hdr := w.Header()
		hdr.Set("X-Request-Id", id)
		if h.draining.Load() {
			hdr.Set("Connection", "close")
		}
		sw := statusWriter{ResponseWriter: w, status: http.StatusOK}
		var next http.Handler = h.front
		if extra != nil {
			if _, pattern := extra.Handler(r); pattern != "" {
				next = extra
			}
		}
		next.ServeHTTP(&sw, r)
		if c := statuses[sw.status]; c != nil {
			c.Inc()
		} else {
			h.metrics.httpStatusCounter(sw.status).Inc()
		}
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom keeps net/http's sendfile path for a HandleHTTP handler that
// copies a file out (http.ServeContent on an *os.File).
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) { return io.Copy(w.ResponseWriter, r) }
