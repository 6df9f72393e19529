package handlers

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/link"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
)

// web is the chat page: plain HTML, CSS and one script, no build step.
//
//go:embed web
var web embed.FS

// ChatPath is where the gateway's HTTP port serves the web chat page.
const ChatPath = "/chat/"

// mountHTTP serves the chat page and forwards the client-facing CGIs on
// the host's HTTP port.
func mountHTTP(h *logicsvr.Host, be *backend, cfg *Config) {
	files, _ := fs.Sub(web, "web")
	h.HandleHTTP(ChatPath, http.StripPrefix(ChatPath, noCache(http.FileServerFS(files))))
	h.HandleHTTP("GET /{$}", http.RedirectHandler(ChatPath, http.StatusFound))
	h.HandleHTTP("GET "+ChatPath+"config.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		port := ""
		if be.gw != nil {
			port = strconv.Itoa(be.gw.Addr().(*net.TCPAddr).Port)
		} else if _, p, err := net.SplitHostPort(cfg.Link); err == nil {
			port = p
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]string{"link_port": port, "link_path": link.WebSocketPath})
	}))

	front := cgi.NewHandler(cgi.WithMaxBodySize(link.MaxClientFrame), cgi.WithDefaultTimeout(30*time.Second),
		cgi.WithLogger(h.Logger()), cgi.WithoutDescribe())
	var paths []string
	for _, sd := range link.Services {
		fwd := *sd
		fwd.HandlerType = nil
		fwd.Methods = slices.Clone(sd.Methods)
		for i := range fwd.Methods {
			m := &fwd.Methods[i]
			inv := be.clients[sd.Name]
			m.Handler = func(_ any, ctx context.Context, req proto.Message) (proto.Message, error) {
				return forwardHTTP(ctx, inv, m, req)
			}
			if m.CGIPath != "" {
				paths = append(paths, m.CGIPath)
			}
		}
		front.RegisterService(&fwd, struct{}{})
	}
	for _, p := range paths {
		h.HandleHTTP(p, front)
	}
	mountMedia(h.HandleHTTP, cfg.MediaHTTP, h.Logger())
}

// forwardHTTP makes a CGI call that came to the gateway's HTTP port: the
// Authorization header goes on as metadata, and nothing else — in
// particular never a forwarded session, which the Logicsvrs would believe
// from the gateway.
func forwardHTTP(ctx context.Context, inv svrkit.Invoker, m *svrkit.MethodDesc, req proto.Message) (proto.Message, error) {
	md := svrkit.Metadata{}
	if a := svrkit.IncomingMetadata(ctx)[session.MetadataKey]; a != "" {
		md[session.MetadataKey] = a
	}
	out := svrkit.WithOutgoingMetadata(ctx, md)
	resp := m.NewResponse()
	if err := inv.Invoke(out, m, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// noCache makes browsers revalidate the page's files, so a new build is
// picked up on reload.
func noCache(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}
