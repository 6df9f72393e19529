package handlers

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/objstore"
)

// SweepStats counts what one sweep removed.
type SweepStats struct {
	// Uploads idle past upload_ttl; Media expired, or whose content never
	// arrived; Grants of media gone; Blobs no media references.
	Uploads, Media, Grants, Blobs int
}

// startSweeper runs Sweep every sweep_every until Close.
func (s *Server) startSweeper() {
	s.sweepDone = make(chan struct{})
	go func() {
		defer close(s.sweepDone)
		t := time.NewTicker(time.Duration(s.cfg.SweepEvery))
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.SweepEvery))
			st, err := s.Sweep(ctx)
			cancel()
			if err != nil {
				slog.Warn("sendmedia: sweep failed", "err", err)
			} else if st != (SweepStats{}) {
				slog.Info("sendmedia: swept", "uploads", st.Uploads, "media", st.Media, "grants", st.Grants, "blobs", st.Blobs)
			}
		}
	}()
}

// Sweep runs one round of the sweeper: it removes uploads idle past
// upload_ttl, expired media (with their grants), grants whose media is
// gone, and then the blobs no remaining media references that were last
// written before sweep_grace ago. The order matters: the references are
// listed before the blobs, and a blob written after the cutoff is never
// deleted (objstore.Store.DeleteIfOlder), so a CompleteUpload or a send
// racing with the sweep keeps what it uses.
func (s *Server) Sweep(ctx context.Context) (SweepStats, error) {
	var st SweepStats
	now := s.now()
	cutoff := now.Add(-time.Duration(s.cfg.SweepGrace))
	n, err := s.sweepUploads()
	st.Uploads = n
	if err != nil {
		return st, err
	}

	referenced := map[string]bool{}
	live := map[string]bool{}
	var gone []string
	err = s.store.List(ctx, "media/", func(i objstore.Info) error {
		id := i.Key[strings.LastIndexByte(i.Key, '/')+1:]
		m, err := s.readRecord(ctx, i.Key)
		if errors.Is(err, objstore.ErrNotFound) {
			return nil // deleted since the listing
		}
		if errors.Is(err, errUndecodable) {
			slog.Warn("sendmedia: sweep skips a record", "key", i.Key, "err", err)
			return nil
		}
		if err != nil {
			return err
		}
		if now.UnixMilli() >= m.GetExpiresUnixMs() {
			gone = append(gone, id)
			return nil
		}
		if i.ModTime.Before(cutoff) {
			// Written long ago, so its content should be there by now: a
			// record whose blob never arrived (its CompleteUpload died
			// and the upload expired) is removed.
			if _, err := s.store.Stat(ctx, blobKey(m.GetSha256())); errors.Is(err, objstore.ErrNotFound) {
				gone = append(gone, id)
				return nil
			}
		}
		live[id] = true
		referenced[hex.EncodeToString(m.GetSha256())] = true
		if t := m.GetThumbSha256(); len(t) > 0 {
			referenced[hex.EncodeToString(t)] = true
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	for _, id := range gone {
		if err := s.deleteMedia(ctx, id); err != nil {
			return st, err
		}
		st.Media++
	}

	// Grants of media deleted by a DeleteMedia that died between the
	// record and its grants.
	var orphans []string
	err = s.store.List(ctx, "grants/", func(i objstore.Info) error {
		parts := strings.Split(i.Key, "/")
		if len(parts) == 3 && !live[parts[1]] && i.ModTime.Before(cutoff) {
			orphans = append(orphans, i.Key)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	for _, k := range orphans {
		if err := s.store.Delete(ctx, k); err != nil {
			return st, err
		}
		st.Grants++
	}

	var candidates []string
	err = s.store.List(ctx, "blobs/", func(i objstore.Info) error {
		sum := i.Key[strings.LastIndexByte(i.Key, '/')+1:]
		if !referenced[sum] && i.ModTime.Before(cutoff) {
			candidates = append(candidates, i.Key)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	for _, k := range candidates {
		deleted, err := s.store.DeleteIfOlder(ctx, k, cutoff)
		if err != nil {
			return st, err
		}
		if deleted {
			st.Blobs++
		}
	}
	return st, nil
}

// sweepUploads removes the uploads idle past upload_ttl.
func (s *Server) sweepUploads() (int, error) {
	ids, err := s.staging.list()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		l := s.staging.lock(id)
		l.Lock()
		_, last, err := s.staging.chunks(id)
		if err != nil {
			// A crash while the upload was created: its age is its
			// directory's.
			if fi, serr := os.Stat(filepath.Join(s.staging.dir, id)); serr == nil {
				last = fi.ModTime()
			}
		}
		if !last.IsZero() && s.expired(last) {
			var owner uint64
			if rec, err := s.staging.record(id); err == nil {
				owner = rec.GetOwnerUserId()
			}
			if s.staging.remove(id, owner) == nil {
				n++
			}
		}
		l.Unlock()
		s.staging.unlock(id)
	}
	return n, nil
}

func (s *Server) readRecord(ctx context.Context, key string) (*im.MediaRecord, error) {
	o, err := s.store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		return nil, err
	}
	m := &im.MediaRecord{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errUndecodable, key, err)
	}
	return m, nil
}

var errUndecodable = errors.New("record does not decode")
