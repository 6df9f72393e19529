package handlers

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/examples/im/internal/objstore"
	"github.com/svrkit/svrkit/examples/im/mediatest"
	"github.com/svrkit/svrkit/examples/im/s3test"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// TestS3Backend: the media of a deployment beyond one machine, in a real
// S3 server (SeaweedFS, which s3test builds and starts here): upload,
// send, download with a range, the participant check, deduplication, and
// the sweeper reclaiming deleted content.
func TestS3Backend(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs SeaweedFS")
	}
	srv := s3test.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := objstore.OpenS3(ctx, objstore.S3Config{Endpoint: srv.Endpoint, Bucket: "media", Prefix: "im/",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, Config{SweepGrace: logicsvr.Duration(time.Minute)}, store)
	a, b, c := e.client(alice), e.client(bob), e.client(carol)
	photo := mediatest.Photo(t, 640, 480, 1)
	m1, err := a.Upload(ctx, bytes.NewReader(photo), int64(len(photo)), "image/jpeg", imclient.UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := b.Upload(ctx, bytes.NewReader(photo), int64(len(photo)), "image/jpeg", imclient.UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.blobs(); len(got) != 2 {
		t.Fatalf("blobs after the same photo twice: %q", got)
	}
	if _, err := a.SendImage(ctx, bob, "s3-1", m1.GetMediaId()); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := b.Download(ctx, m1.GetMediaId(), false, 100, &got); err != nil || int64(got.Len()) != m1.GetSize()-100 {
		t.Fatalf("range download: %d bytes, %v", got.Len(), err)
	}
	if bytes.Contains(got.Bytes(), []byte(mediatest.GPSMarker)) {
		t.Fatal("the location survived")
	}
	_, err = c.Download(ctx, m1.GetMediaId(), false, 0, &got)
	wantCode(t, "carol", err, svrkit.PermissionDenied, "not sent to you")

	for _, m := range []string{m1.GetMediaId(), m2.GetMediaId()} {
		cl := a
		if m == m2.GetMediaId() {
			cl = b
		}
		if _, err := cl.DeleteMedia(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.advance(2 * time.Minute)
	st, err := e.srv.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != 2 || len(e.blobs()) != 0 {
		t.Fatalf("sweep %+v left %q", st, e.blobs())
	}
}
