package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/examples/im/internal/objstore"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/mediatest"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/cgi"
)

// These tests run the SendMedia service in a real logicsvr.Host over real
// HTTP, with its real staging directory and object store on disk, and call
// it through imclient as a phone would. Only the two services it calls,
// AccountData and MessageData, are stand-ins that keep users and inboxes
// in memory; examples/im's tests run it with the real ones.

const (
	alice, bob, carol uint64 = 1, 2, 3
)

// accountsStub knows users 1 to 3.
type accountsStub struct{ im.AccountDataClient }

func (accountsStub) GetAccount(_ context.Context, req *im.GetAccountRequest, _ ...svrkit.CallOption) (*im.AccountRecord, error) {
	if u := req.GetUserId(); u >= 1 && u <= 3 {
		return &im.AccountRecord{UserId: u}, nil
	}
	return nil, svrkit.Errorf(svrkit.NotFound, "no user %d", req.GetUserId())
}

// inboxesStub keeps delivered messages, deduplicated as MessageData is.
type inboxesStub struct {
	im.MessageDataClient
	mu    sync.Mutex
	seen  map[string]int64
	items map[uint64][]*im.Message
}

func (s *inboxesStub) Deliver(_ context.Context, req *im.DeliverRequest, _ ...svrkit.CallOption) (*im.DeliverReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := req.GetDedupId() + "@" + string(rune(req.GetUserId()))
	if at, ok := s.seen[key]; ok {
		return &im.DeliverReply{AtUnixMs: at, Duplicate: true}, nil
	}
	at := time.Now().UnixMilli()
	s.seen[key] = at
	s.items[req.GetUserId()] = append(s.items[req.GetUserId()], req.GetItem().GetMessage())
	return &im.DeliverReply{AtUnixMs: at, Version: uint64(len(s.items[req.GetUserId()]))}, nil
}

// DeliverPair answers as a messagedata that predates it: the sends here
// take the two Delivers.
func (s *inboxesStub) DeliverPair(context.Context, *im.DeliverPairRequest, ...svrkit.CallOption) (*im.DeliverPairReply, error) {
	return nil, svrkit.NewError(svrkit.Unimplemented, "unknown cmdid 5")
}

func (s *inboxesStub) inbox(u uint64) []*im.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*im.Message(nil), s.items[u]...)
}

// clock is the server's time, moved by tests.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

type env struct {
	t       *testing.T
	srv     *Server
	dir     string
	store   objstore.Store
	inboxes *inboxesStub
	clock   *clock
	signer  *session.Signer
	checker *session.Checker
	base    string
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	store, err := objstore.OpenDir(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	return newEnvWith(t, cfg, store)
}

// newEnvWith is newEnv over another object store.
func newEnvWith(t *testing.T, cfg Config, store objstore.Store) *env {
	t.Helper()
	dir := t.TempDir()
	cfg.Dir = dir
	signer, err := session.NewSigner("test secret", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, store: store, signer: signer, clock: &clock{},
		inboxes: &inboxesStub{seen: map[string]int64{}, items: map[uint64][]*im.Message{}}}
	checker := session.NewChecker(signer, func(context.Context, uint64) (*im.SessionState, error) {
		return &im.SessionState{}, nil // every account exists; nothing revoked
	})
	e.srv, err = New(cfg, store, accountsStub{}, e.inboxes, checker)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.now = e.clock.now
	h, err := logicsvr.New(logicsvr.Config{Name: "sendmedia", HTTP: "127.0.0.1:0", RPC: logicsvr.Off, Admin: "127.0.0.1:0"},
		logicsvr.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	im.RegisterSendMediaServer(h, e.srv)
	e.srv.Mount(h)
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = h.Shutdown(context.Background())
		_ = e.srv.Close()
	})
	e.base = "http://" + h.HTTPAddr().String()
	return e
}

// client is user u's phone.
func (e *env) client(u uint64) *imclient.Client {
	tok, _, err := e.signer.Issue(u, "phone", 0, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	c := imclient.New(imclient.Addrs{Media: e.base})
	c.SetSession(imclient.Session{UserID: u, Token: tok})
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func wantCode(t *testing.T, what string, err error, code svrkit.Code, msg string) {
	t.Helper()
	if svrkit.CodeOf(err) != code || !strings.Contains(err.Error(), msg) {
		t.Fatalf("%s: got %v, want %v with %q", what, err, code, msg)
	}
}

// blobs lists the content the object store holds.
func (e *env) blobs() []string {
	var keys []string
	_ = e.store.List(context.Background(), "blobs/", func(i objstore.Info) error { keys = append(keys, i.Key); return nil })
	return keys
}

func download(t *testing.T, c *imclient.Client, id string, thumb bool) ([]byte, *imclient.Download, error) {
	t.Helper()
	var buf bytes.Buffer
	d, err := c.Download(ctx(t), id, thumb, 0, &buf)
	return buf.Bytes(), d, err
}

func TestImageUploadSendDownload(t *testing.T) {
	e := newEnv(t, Config{})
	a, b, c := e.client(alice), e.client(bob), e.client(carol)
	photo := mediatest.Photo(t, 800, 600, 6)
	info, err := a.Upload(ctx(t), bytes.NewReader(photo), int64(len(photo)), "image/jpeg", imclient.UploadOptions{ChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetKind() != im.MediaKind_MEDIA_KIND_IMAGE || info.GetWidth() != 600 || info.GetHeight() != 800 ||
		info.GetThumbWidth() != 240 || info.GetThumbHeight() != 320 {
		t.Fatalf("media %v", info)
	}
	if got := strings.Join(info.GetStripped(), ","); got != "exif,xmp,comment" {
		t.Errorf("stripped %q", got)
	}
	r, err := a.SendImage(ctx(t), bob, "img-1", info.GetMediaId())
	if err != nil {
		t.Fatal(err)
	}
	// The message is in bob's inbox (and alice's own), naming the media.
	msgs := e.inboxes.inbox(bob)
	if len(msgs) != 1 || msgs[0].GetType() != im.MessageType_MESSAGE_TYPE_IMAGE || msgs[0].GetText() != ImageFallbackText ||
		msgs[0].GetMedia().GetMediaId() != info.GetMediaId() || msgs[0].GetMedia().GetThumbMediaId() != info.GetMediaId() {
		t.Fatalf("bob's inbox: %v", msgs)
	}
	if own := e.inboxes.inbox(alice); len(own) != 1 || own[0].GetSentUnixMs() != r.GetSentUnixMs() {
		t.Fatalf("alice's own copy: %v", own)
	}
	// A retry is a duplicate, not a second message.
	if r2, err := a.SendImage(ctx(t), bob, "img-1", info.GetMediaId()); err != nil || !r2.GetDuplicate() || len(e.inboxes.inbox(bob)) != 1 {
		t.Fatalf("retry: %v %v, %d messages", r2, err, len(e.inboxes.inbox(bob)))
	}

	// Bob downloads it: no location, the ETag its SHA-256.
	got, d, err := download(t, b, info.GetMediaId(), false)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(got)
	if bytes.Contains(got, []byte(mediatest.GPSMarker)) || d.MimeType != "image/jpeg" || d.ETag != `"`+hex.EncodeToString(sum[:])+`"` ||
		int64(len(got)) != info.GetSize() || !bytes.Equal(sum[:], info.GetSha256()) {
		t.Fatalf("download: %d bytes, %+v; location kept: %v", len(got), d, bytes.Contains(got, []byte(mediatest.GPSMarker)))
	}
	// And the thumbnail.
	th, d, err := download(t, b, info.GetMediaId(), true)
	if err != nil || d.MimeType != "image/jpeg" || int64(len(th)) != info.GetThumbSize() {
		t.Fatalf("thumbnail: %d bytes, %+v, %v", len(th), d, err)
	}
	// A range: the last 100 bytes, then past the end.
	var tail bytes.Buffer
	if d, err := b.Download(ctx(t), info.GetMediaId(), false, int64(len(got))-100, &tail); err != nil || !bytes.Equal(tail.Bytes(), got[len(got)-100:]) || d.Size != int64(len(got)) {
		t.Fatalf("range: %v, %d bytes", err, tail.Len())
	}
	_, err = b.Download(ctx(t), info.GetMediaId(), false, int64(len(got)), io.Discard)
	wantCode(t, "range past the end", err, svrkit.OutOfRange, "past the end")

	// Carol was not in the conversation.
	_, _, err = download(t, c, info.GetMediaId(), false)
	wantCode(t, "carol's download", err, svrkit.PermissionDenied, "not sent to you")
	_, _, err = download(t, c, info.GetMediaId(), true)
	wantCode(t, "carol's thumbnail", err, svrkit.PermissionDenied, "not sent to you")
	_, err = c.SendImage(ctx(t), bob, "steal", info.GetMediaId())
	wantCode(t, "carol sending alice's media", err, svrkit.PermissionDenied, "neither yours nor sent to you")
	// Nor is anyone without a token, or with a forged one.
	res, err := http.Get(e.base + DownloadPath + info.GetMediaId())
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %v %v", res.StatusCode, err)
	}
	res.Body.Close()
	req, _ := http.NewRequest("GET", e.base+DownloadPath+info.GetMediaId(), nil)
	req.Header.Set("Authorization", "Bearer forged")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged token: %v %v", res.StatusCode, err)
	} else {
		res.Body.Close()
	}
	_, _, err = download(t, b, strings.Repeat("0", 32), false)
	wantCode(t, "unknown media", err, svrkit.NotFound, "no media")

	// Bob forwards it to carol: no new content, and carol may download.
	before := e.blobs()
	if _, err := b.SendImage(ctx(t), carol, "fwd-1", info.GetMediaId()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := download(t, c, info.GetMediaId(), false); err != nil {
		t.Fatalf("carol after the forward: %v", err)
	}
	if after := e.blobs(); len(after) != len(before) || len(after) != 2 {
		t.Fatalf("blobs before the forward %q, after %q: want the image and its thumbnail, once", before, after)
	}
	// An image is not a video.
	_, err = a.SendVideo(ctx(t), bob, "v-1", info.GetMediaId(), "")
	wantCode(t, "image sent as video", err, svrkit.FailedPrecondition, "MEDIA_KIND_IMAGE")
	_, err = a.SendImage(ctx(t), 99, "x-1", info.GetMediaId())
	wantCode(t, "unknown receiver", err, svrkit.NotFound, "no user 99")
}

func TestVideoWithCover(t *testing.T) {
	e := newEnv(t, Config{})
	a, b := e.client(alice), e.client(bob)
	video := mediatest.MP4(false)
	vi, err := a.Upload(ctx(t), bytes.NewReader(video), int64(len(video)), "video/mp4", imclient.UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if vi.GetKind() != im.MediaKind_MEDIA_KIND_VIDEO || vi.GetDurationMs() != 12345 || vi.GetWidth() != 640 || vi.GetSize() != int64(len(video)) {
		t.Fatalf("video %v", vi)
	}
	cover := mediatest.Photo(t, 640, 480, 1)
	ci, err := a.Upload(ctx(t), bytes.NewReader(cover), int64(len(cover)), "image/jpeg", imclient.UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SendVideo(ctx(t), bob, "v-1", vi.GetMediaId(), ci.GetMediaId()); err != nil {
		t.Fatal(err)
	}
	m := e.inboxes.inbox(bob)[0]
	if m.GetType() != im.MessageType_MESSAGE_TYPE_VIDEO || m.GetText() != VideoFallbackText || m.GetMedia().GetDurationMs() != 12345 ||
		m.GetMedia().GetThumbMediaId() != ci.GetMediaId() {
		t.Fatalf("message %v", m)
	}
	got, _, err := download(t, b, vi.GetMediaId(), false)
	if err != nil || len(got) != len(video) || bytes.Contains(got, []byte(mediatest.GPSMarker)) {
		t.Fatalf("video download: %d bytes, %v", len(got), err)
	}
	if _, _, err := download(t, b, ci.GetMediaId(), true); err != nil {
		t.Fatalf("cover thumbnail: %v", err)
	}
	_, _, err = download(t, b, vi.GetMediaId(), true)
	wantCode(t, "a video's own thumbnail", err, svrkit.NotFound, "no thumbnail")
}

// TestResume: an upload cut half way (the process holding it gone) is
// finished from what the server reports, without sending stored chunks
// again.
func TestResume(t *testing.T) {
	e := newEnv(t, Config{})
	a := e.client(alice)
	video := mediatest.MP4WithData(600 << 10)
	var id string
	_, err := a.Upload(ctx(t), bytes.NewReader(video), int64(len(video)), "video/mp4",
		imclient.UploadOptions{ChunkSize: 64 << 10, StopAfter: int64(len(video)) / 2, Started: func(u string) { id = u }})
	if err != imclient.ErrStopped {
		t.Fatalf("first half: %v", err)
	}
	st, err := a.GetUpload(ctx(t), id)
	if err != nil || st.GetStoredBytes() < int64(len(video))/2 || st.GetStoredBytes() == int64(len(video)) || len(st.GetStored()) != 1 {
		t.Fatalf("state after the cut: %v, %v", st, err)
	}
	var sent atomic.Int64
	info, err := a.Upload(ctx(t), bytes.NewReader(video), int64(len(video)), "video/mp4", imclient.UploadOptions{
		UploadID: id,
		Progress: func(stored, _ int64) { sent.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	chunks := (int64(len(video)) + 64<<10 - 1) / (64 << 10)
	if n := sent.Load(); n >= chunks || n == 0 {
		t.Fatalf("resumed with %d chunks of %d", n, chunks)
	}
	if info.GetMediaId() != id {
		t.Fatalf("media %s, upload %s", info.GetMediaId(), id)
	}
	// Completing again, or asking, says it is done.
	st, err = a.GetUpload(ctx(t), id)
	if err != nil || !st.GetCompleted() {
		t.Fatalf("after completion: %v %v", st, err)
	}
}

// TestBadUploads: each bad input of issue #15 gets its defined error, and
// nothing of a refused upload can be downloaded.
func TestBadUploads(t *testing.T) {
	e := newEnv(t, Config{})
	a, b := e.client(alice), e.client(bob)
	start := func(mime string, data []byte, declared int64, sum []byte) string {
		t.Helper()
		if sum == nil {
			s := sha256.Sum256(data)
			sum = s[:]
		}
		st, err := e.rawStart(alice, &im.StartUploadRequest{MimeType: mime, Size: declared, Sha256: sum, ChunkSize: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		return st.GetUploadId()
	}
	upload := func(data []byte, mime string) (*im.MediaInfo, error) {
		return a.Upload(ctx(t), bytes.NewReader(data), int64(len(data)), mime, imclient.UploadOptions{ChunkSize: 64 << 10})
	}
	photo := mediatest.Photo(t, 300, 200, 1)

	t.Run("declared size larger than the bytes", func(t *testing.T) {
		id := start("image/jpeg", photo, int64(len(photo))+100, nil)
		_, err := e.chunkErr(alice, id, 0, photo)
		wantCode(t, "chunk", err, svrkit.InvalidArgument, fmt.Sprintf("must be %d bytes (got %d)", len(photo)+100, len(photo)))
		_, err = e.complete(alice, id)
		wantCode(t, "complete", err, svrkit.FailedPrecondition, fmt.Sprintf("bytes 0-%d are missing", len(photo)+99))
	})
	t.Run("bytes past the declared size", func(t *testing.T) {
		id := start("image/jpeg", photo, 1000, nil)
		_, err := e.chunkErr(alice, id, 0, photo[:2000])
		wantCode(t, "chunk", err, svrkit.OutOfRange, "past the declared size")
	})
	t.Run("hash mismatch", func(t *testing.T) {
		id := start("image/jpeg", photo, int64(len(photo)), bytes.Repeat([]byte{1}, 32))
		e.chunk(t, alice, id, 0, photo)
		_, err := e.complete(alice, id)
		wantCode(t, "complete", err, svrkit.InvalidArgument, "SHA-256")
		_, err = e.complete(alice, id)
		wantCode(t, "complete again", err, svrkit.NotFound, "no upload")
	})
	t.Run("PNG header on garbage", func(t *testing.T) {
		_, err := upload(mediatest.PNGHeaderOnGarbage(t, true), "image/png")
		wantCode(t, "upload", err, svrkit.InvalidArgument, "does not decode")
		_, err = upload(mediatest.PNGHeaderOnGarbage(t, false), "image/png")
		wantCode(t, "upload", err, svrkit.InvalidArgument, "PNG")
	})
	t.Run("decompression bomb", func(t *testing.T) {
		_, err := upload(mediatest.PNGBomb(100_000, 100_000), "image/png")
		wantCode(t, "upload", err, svrkit.InvalidArgument, "over the limit")
	})
	t.Run("declared type is not the content's", func(t *testing.T) {
		_, err := upload(photo, "image/png")
		wantCode(t, "upload", err, svrkit.InvalidArgument, "not the declared image/png")
		_, err = upload(photo, "video/mp4")
		wantCode(t, "upload", err, svrkit.InvalidArgument, "not an MP4")
	})
	t.Run("overlapping and out-of-range chunks", func(t *testing.T) {
		data := bytes.Repeat([]byte{9}, 200<<10)
		id := start("video/mp4", data, int64(len(data)), nil)
		for _, tc := range []struct {
			off  int64
			n    int
			code svrkit.Code
			msg  string
		}{
			{100, 64 << 10, svrkit.InvalidArgument, "not a multiple of chunk_size"},
			{0, 128 << 10, svrkit.InvalidArgument, "must be 65536 bytes"},
			{0, 100, svrkit.InvalidArgument, "must be 65536 bytes"},
			{192 << 10, 64 << 10, svrkit.OutOfRange, "past the declared size"},
			{200 << 10, 1, svrkit.OutOfRange, "outside the declared size"},
			{-64 << 10, 64 << 10, svrkit.OutOfRange, "outside the declared size"},
		} {
			_, err := e.chunkErr(alice, id, tc.off, data[:tc.n])
			wantCode(t, "chunk", err, tc.code, tc.msg)
		}
		e.chunk(t, alice, id, 0, data[:64<<10])
		e.chunk(t, alice, id, 0, data[:64<<10]) // a retry
		_, err := e.chunkErr(alice, id, 0, bytes.Repeat([]byte{8}, 64<<10))
		wantCode(t, "different bytes", err, svrkit.FailedPrecondition, "already stored, with other bytes")
	})
	t.Run("limits at start", func(t *testing.T) {
		for _, tc := range []struct {
			req *im.StartUploadRequest
			msg string
		}{
			{&im.StartUploadRequest{MimeType: "image/jpeg", Size: MaxImageBytes + 1, Sha256: make([]byte, 32)}, "size must be 1 to 10485760"},
			{&im.StartUploadRequest{MimeType: "video/mp4", Size: MaxVideoBytes + 1, Sha256: make([]byte, 32)}, "size must be 1 to 104857600"},
			{&im.StartUploadRequest{MimeType: "image/bmp", Size: 10, Sha256: make([]byte, 32)}, "is not one of"},
			{&im.StartUploadRequest{MimeType: "image/png", Size: 10, Sha256: make([]byte, 31)}, "sha256 must be 32 bytes"},
			{&im.StartUploadRequest{MimeType: "image/png", Size: 10, Sha256: make([]byte, 32), ChunkSize: 1000}, "chunk_size must be"},
			{&im.StartUploadRequest{MimeType: "image/png", Size: 10, Sha256: make([]byte, 32), ChunkSize: 4 << 20}, "chunk_size must be"},
		} {
			_, err := e.rawStart(alice, tc.req)
			wantCode(t, "start", err, svrkit.InvalidArgument, tc.msg)
		}
	})
	t.Run("another user's upload", func(t *testing.T) {
		id := start("image/jpeg", photo, int64(len(photo)), nil)
		_, err := e.chunkErr(bob, id, 0, photo)
		wantCode(t, "bob's chunk", err, svrkit.NotFound, "no upload")
		_, err = b.GetUpload(ctx(t), id)
		wantCode(t, "bob's GetUpload", err, svrkit.NotFound, "no upload")
		// Nothing of an unfinished upload is media.
		_, _, err = download(t, a, id, false)
		wantCode(t, "download of an upload", err, svrkit.NotFound, "no media")
	})
	t.Run("too many uploads", func(t *testing.T) {
		f := newEnv(t, Config{})
		for i := range MaxOpenUploads {
			if _, err := f.rawStart(carol, &im.StartUploadRequest{MimeType: "image/png", Size: 10, Sha256: make([]byte, 32)}); err != nil {
				t.Fatalf("upload %d: %v", i, err)
			}
		}
		_, err := f.rawStart(carol, &im.StartUploadRequest{MimeType: "image/png", Size: 10, Sha256: make([]byte, 32)})
		wantCode(t, "one more", err, svrkit.ResourceExhausted, "uploads in progress")
	})
}

// TestSweep: abandoned uploads go after upload_ttl; deleted and expired
// media lose their grants, and their content once no media holds it.
func TestSweep(t *testing.T) {
	e := newEnv(t, Config{UploadTTL: logicsvr.Duration(time.Hour), SweepGrace: logicsvr.Duration(time.Minute), MediaRetention: logicsvr.Duration(48 * time.Hour)})
	a, b := e.client(alice), e.client(bob)
	photo := mediatest.Photo(t, 400, 300, 1)
	// The same photo uploaded twice: one blob (and one thumbnail).
	m1, err := a.Upload(ctx(t), bytes.NewReader(photo), int64(len(photo)), "image/jpeg", imclient.UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := b.Upload(ctx(t), bytes.NewReader(photo), int64(len(photo)), "image/jpeg", imclient.UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.blobs(); len(got) != 2 {
		t.Fatalf("blobs after the same photo twice: %q", got)
	}
	if _, err := a.SendImage(ctx(t), bob, "s-1", m1.GetMediaId()); err != nil {
		t.Fatal(err)
	}
	// An upload abandoned half way.
	video := mediatest.MP4WithData(300 << 10)
	var abandoned string
	_, _ = a.Upload(ctx(t), bytes.NewReader(video), int64(len(video)), "video/mp4",
		imclient.UploadOptions{ChunkSize: 64 << 10, StopAfter: 128 << 10, Started: func(id string) { abandoned = id }})
	staged := filepath.Join(e.dir, "uploads", abandoned)
	if _, err := os.Stat(staged); err != nil {
		t.Fatal(err)
	}
	sweep := func() SweepStats {
		t.Helper()
		st, err := e.srv.Sweep(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := sweep(); st != (SweepStats{}) {
		t.Fatalf("a sweep with nothing due removed %+v", st)
	}
	e.clock.advance(time.Hour + time.Minute)
	if st := sweep(); st.Uploads != 1 || st.Blobs != 0 {
		t.Fatalf("after upload_ttl: %+v", st)
	}
	if _, err := os.Stat(staged); !os.IsNotExist(err) {
		t.Fatalf("the abandoned upload is still staged: %v", err)
	}
	_, err = a.GetUpload(ctx(t), abandoned)
	wantCode(t, "the abandoned upload", err, svrkit.NotFound, "no upload")

	// Alice deletes her copy: bob's holds the content.
	if r, err := a.DeleteMedia(ctx(t), m1.GetMediaId()); err != nil || !r.GetDeleted() {
		t.Fatalf("delete: %v %v", r, err)
	}
	if r, err := a.DeleteMedia(ctx(t), m1.GetMediaId()); err != nil || r.GetDeleted() {
		t.Fatalf("delete again: %v %v", r, err)
	}
	_, err = b.DeleteMedia(ctx(t), strings.Repeat("a", 32))
	if err != nil {
		t.Fatalf("deleting unknown media: %v", err)
	}
	_, _, err = download(t, b, m1.GetMediaId(), false)
	wantCode(t, "download of deleted media", err, svrkit.NotFound, "no media")
	if st := sweep(); st.Blobs != 0 {
		t.Fatalf("reclaimed content bob's media holds: %+v", st)
	}
	if _, _, err := download(t, b, m2.GetMediaId(), false); err != nil {
		t.Fatal(err)
	}
	// Bob's expires: now nothing holds it.
	e.clock.advance(48 * time.Hour)
	if st := sweep(); st.Media != 1 || st.Blobs != 2 {
		t.Fatalf("after expiry: %+v", st)
	}
	if got := e.blobs(); len(got) != 0 {
		t.Fatalf("left %q", got)
	}
	var grants []string
	_ = e.store.List(context.Background(), "grants/", func(i objstore.Info) error { grants = append(grants, i.Key); return nil })
	if len(grants) != 0 {
		t.Fatalf("grants left: %q", grants)
	}
}

// rawStart, chunk and complete make the calls Upload makes, one by one,
// as user u.
func (e *env) raw(u uint64) (context.Context, im.SendMediaClient) {
	tok, _, err := e.signer.Issue(u, "phone", 0, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	c := svrkit.WithOutgoingMetadata(ctx(e.t), svrkit.Metadata{session.MetadataKey: session.Header(tok)})
	return c, im.NewSendMediaClient(cgi.NewClient(e.base, nil))
}

func (e *env) rawStart(u uint64, req *im.StartUploadRequest) (*im.UploadState, error) {
	c, m := e.raw(u)
	return m.StartUpload(c, req)
}

func (e *env) chunkErr(u uint64, id string, off int64, data []byte) (*im.UploadState, error) {
	c, m := e.raw(u)
	return m.UploadChunk(c, &im.UploadChunkRequest{UploadId: id, Offset: off, Data: data})
}

func (e *env) chunk(t *testing.T, u uint64, id string, off int64, data []byte) {
	t.Helper()
	if _, err := e.chunkErr(u, id, off, data); err != nil {
		t.Fatalf("chunk at %d: %v", off, err)
	}
}

func (e *env) complete(u uint64, id string) (*im.MediaInfo, error) {
	c, m := e.raw(u)
	return m.CompleteUpload(c, &im.CompleteUploadRequest{UploadId: id})
}
