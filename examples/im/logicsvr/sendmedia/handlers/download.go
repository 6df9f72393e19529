package handlers

import (
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/objstore"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
)

// downloadHandler serves a media's file, or its thumbnail, with Range
// requests (media.proto's Download): session token, participant check,
// then http.ServeContent.
func (s *Server) downloadHandler(thumb bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		claims, err := s.bearer(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", "Bearer")
			cgi.WriteError(w, err)
			return
		}
		select {
		case s.download <- struct{}{}:
			defer func() { <-s.download }()
		default:
			cgi.WriteError(w, svrkit.NewError(svrkit.ResourceExhausted, "too many downloads at once; retry"))
			return
		}
		id := r.PathValue("media_id")
		if !validID(id) {
			cgi.WriteError(w, svrkit.Errorf(svrkit.NotFound, "no media %q", id))
			return
		}
		m, err := s.record(ctx, id)
		if err != nil {
			cgi.WriteError(w, err)
			return
		}
		if ok, err := s.mayRead(ctx, m, claims.UserID); err != nil {
			cgi.WriteError(w, err)
			return
		} else if !ok {
			cgi.WriteError(w, svrkit.Errorf(svrkit.PermissionDenied, "media %s was not sent to you", id))
			return
		}
		sum, mime := m.GetSha256(), m.GetMimeType()
		if thumb {
			if len(m.GetThumbSha256()) == 0 {
				cgi.WriteError(w, svrkit.Errorf(svrkit.NotFound, "media %s has no thumbnail", id))
				return
			}
			sum, mime = m.GetThumbSha256(), "image/jpeg"
		}
		o, err := s.store.Open(ctx, blobKey(sum))
		if errors.Is(err, objstore.ErrNotFound) {
			cgi.WriteError(w, svrkit.Errorf(svrkit.DataLoss, "the content of media %s is missing", id))
			return
		}
		if err != nil {
			cgi.WriteError(w, svrkit.Errorf(svrkit.Unavailable, "reading media %s: %v", id, err))
			return
		}
		defer o.Close()
		h := w.Header()
		h.Set("Content-Type", mime)
		h.Set("ETag", `"`+hex.EncodeToString(sum)+`"`)
		h.Set("Cache-Control", "private, max-age=86400")
		h.Set("X-Content-Type-Options", "nosniff")
		var content io.ReadSeeker = o
		if f, ok := o.(interface{ OSFile() *os.File }); ok {
			content = f.OSFile() // lets net/http use sendfile
		}
		http.ServeContent(w, r, "", time.UnixMilli(m.GetCreatedUnixMs()), content)
	})
}

// bearer checks the request's session token (the Authorization header,
// as the CGIs take it).
func (s *Server) bearer(r *http.Request) (session.Claims, error) {
	v := strings.TrimSpace(r.Header.Get("Authorization"))
	if v == "" {
		return session.Claims{}, session.ErrMissing
	}
	const scheme = "bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return session.Claims{}, session.ErrInvalid
	}
	return s.signer.Token(r.Context(), strings.TrimSpace(v[len(scheme):]))
}
