package logicsvr

import (
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// by status (including those the front refuses before any method runs).
func (h *Host) httpHandler() http.Handler {
	// The statuses the front answers, resolved now so that a response
	// takes no lock; any other goes through the metrics' locked cache.
	statuses := map[int]prometheus.Counter{}
	for _, s := range []int{200, 206, 304, 400, 401, 403, 404, 405, 409, 413, 415, 416, 429, 499, 500, 501, 503, 504} {
		statuses[s] = h.metrics.httpStatusCounter(s)
	}
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
		if _, pattern := h.extraHTTPHandler(r); pattern != "" {
			h.extraHTTP.ServeHTTP(&sw, r)
		} else {
			h.front.ServeHTTP(&sw, r)
		}
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
// copies a file out (http.ServeContent on an *os.File, a media download).
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) { return io.Copy(w.ResponseWriter, r) }

// HandleHTTP serves handler for pattern (as http.ServeMux reads it) on the
// HTTP port beside the CGIs: pages and endpoints of a Logicsvr that are not
// methods, such as the monitor center's dashboard at /monitor/. A request
// that matches a pattern goes to its handler, every other one to the CGI
// front, so a pattern must not cover CGI paths. A Logicsvr with such
// routes serves HTTP even if none of its services has a CGI path. Call it
// before Start.
func (h *Host) HandleHTTP(pattern string, handler http.Handler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		panic("logicsvr: HandleHTTP after Start")
	}
	if h.extraHTTP == nil {
		h.extraHTTP = http.NewServeMux()
	}
	h.extraHTTP.Handle(pattern, handler)
}

// extraHTTPHandler returns the HandleHTTP route of r, if any.
func (h *Host) extraHTTPHandler(r *http.Request) (http.Handler, string) {
	if h.extraHTTP == nil {
		return nil, ""
	}
	return h.extraHTTP.Handler(r)
}
