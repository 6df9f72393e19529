package im_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/examples/im/imtest"
	"github.com/svrkit/svrkit/examples/im/mediatest"
	"github.com/svrkit/svrkit/svrkit"
)

// TestMedia runs the sendmedia Logicsvr in the real backend under
// `svrkit up`: an image from alice reaches bob through the normal
// store-and-forward path (messagedata, storage, sync) and only the two of
// them can download it; an upload cut by a SIGKILL of sendmedia resumes
// once it is back; and, issue #15's isolation, saturating sendmedia with
// large uploads and then SIGKILLing it leaves text sending and sync
// answering within their bound.
func TestMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole backend")
	}
	b := imtest.Start(t)
	addrs, err := imclient.ReadStateFile(b.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if addrs.Media == "" {
		t.Fatal("no sendmedia in the state file")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	users := map[string]*imclient.Client{}
	ids := map[string]uint64{}
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		c := imclient.New(addrs)
		id, err := c.Register(ctx, name, "password-"+name, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Login(ctx, name, "password-"+name, "phone"); err != nil {
			t.Fatal(err)
		}
		users[name], ids[name] = c, id
	}
	t.Run("image through store and forward", func(t *testing.T) {
		alice, bob, carol := users["alice"], users["bob"], users["carol"]
		photo := mediatest.Photo(t, 1024, 768, 1)
		info, err := alice.Upload(ctx, bytes.NewReader(photo), int64(len(photo)), "image/jpeg", imclient.UploadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.SendImage(ctx, ids["bob"], "", info.GetMediaId()); err != nil {
			t.Fatal(err)
		}
		items, _, err := bob.SyncAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m *im.Message
		for _, it := range items {
			if x := it.GetMessage(); x != nil && x.GetType() == im.MessageType_MESSAGE_TYPE_IMAGE {
				m = x
			}
		}
		if m == nil || m.GetMedia().GetMediaId() != info.GetMediaId() || m.GetMedia().GetWidth() != 1024 ||
			m.GetFromUserId() != ids["alice"] || m.GetSentUnixMs() == 0 {
			t.Fatalf("bob synced %v", items)
		}
		// What a client that predates images shows: the text.
		if m.GetText() != "[Image]" {
			t.Errorf("fallback text %q", m.GetText())
		}
		var got bytes.Buffer
		if _, err := bob.Download(ctx, m.GetMedia().GetMediaId(), false, 0, &got); err != nil {
			t.Fatal(err)
		}
		if int64(got.Len()) != info.GetSize() || bytes.Contains(got.Bytes(), []byte(mediatest.GPSMarker)) {
			t.Fatalf("bob downloaded %d bytes (want %d); location kept: %v", got.Len(), info.GetSize(), bytes.Contains(got.Bytes(), []byte(mediatest.GPSMarker)))
		}
		_, err = carol.Download(ctx, m.GetMedia().GetMediaId(), true, 0, &got)
		if svrkit.CodeOf(err) != svrkit.PermissionDenied {
			t.Fatalf("carol's download: %v, want permission_denied", err)
		}
	})

	t.Run("upload resumes after sendmedia is killed", func(t *testing.T) {
		alice := users["alice"]
		video := mediatest.MP4WithData(3 << 20)
		var id string
		_, err := alice.Upload(ctx, bytes.NewReader(video), int64(len(video)), "video/mp4",
			imclient.UploadOptions{ChunkSize: 256 << 10, StopAfter: int64(len(video)) / 2, Started: func(u string) { id = u }})
		if err != imclient.ErrStopped {
			t.Fatalf("first half: %v", err)
		}
		pid, err := b.Kill("sendmedia")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.WaitReady(ctx, "sendmedia", pid, time.Minute); err != nil {
			t.Fatal(err)
		}
		st, err := alice.GetUpload(ctx, id)
		if err != nil || st.GetStoredBytes() < int64(len(video))/2 {
			t.Fatalf("after the restart the upload has %v (%v)", st, err)
		}
		info, err := alice.Upload(ctx, bytes.NewReader(video), int64(len(video)), "video/mp4", imclient.UploadOptions{UploadID: id})
		if err != nil || info.GetDurationMs() != 12345 {
			t.Fatalf("resumed: %v %v", info, err)
		}
	})

	t.Run("isolation", func(t *testing.T) { testIsolation(t, ctx, b, users, ids) })
}

// isolationP99 is the bound: while sendmedia is saturated and then
// SIGKILLed, every text send and sync succeeds and the p99 of each stays
// under it. It is absolute, not a multiple of the baseline measured just
// before, because this machine is shared: other builds start and stop
// between the two windows and move a 60 ms baseline tenfold on their own.
// The baseline is logged beside it.
const isolationP99 = time.Second

// testIsolation: dave and carol text each other (send, then the receiver
// syncs it) throughout; a baseline is measured; then four uploaders push
// 20 MiB videos into sendmedia as fast as it takes them, and sendmedia is
// SIGKILLed in the middle of it. Text goes through send, messagedata,
// storage and sync, none of which is sendmedia.
func testIsolation(t *testing.T, ctx context.Context, b *imtest.Backend, users map[string]*imclient.Client, ids map[string]uint64) {
	type sample struct {
		at   time.Time
		send time.Duration
		sync time.Duration
	}
	var (
		mu      sync.Mutex
		samples []sample
		textErr []error
	)
	textCtx, stopText := context.WithCancel(ctx)
	var texters sync.WaitGroup
	for _, pair := range [][2]string{{"dave", "carol"}, {"carol", "dave"}} {
		from, to := users[pair[0]], users[pair[1]]
		toID := ids[pair[1]]
		texters.Add(1)
		go func() {
			defer texters.Done()
			for n := 0; textCtx.Err() == nil; n++ {
				t0 := time.Now()
				sctx, cancel := context.WithTimeout(textCtx, 10*time.Second)
				_, err := from.SendText(sctx, toID, "", fmt.Sprintf("text %d", n))
				t1 := time.Now()
				if err == nil {
					_, _, err = to.SyncAll(sctx)
				}
				t2 := time.Now()
				cancel()
				if textCtx.Err() != nil {
					return
				}
				mu.Lock()
				if err != nil {
					textErr = append(textErr, err)
				} else {
					samples = append(samples, sample{at: t0, send: t1.Sub(t0), sync: t2.Sub(t1)})
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond) // a person's pace, roughly
			}
		}()
	}
	p99 := func(from, to time.Time) (send, syncd time.Duration, n int) {
		mu.Lock()
		defer mu.Unlock()
		var s, y []time.Duration
		for _, x := range samples {
			if !x.at.Before(from) && x.at.Before(to) {
				s, y = append(s, x.send), append(y, x.sync)
			}
		}
		return percentile(s, 0.99), percentile(y, 0.99), len(s)
	}
	waitFor := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}

	baseStart := time.Now()
	waitFor(6 * time.Second)
	baseSend, baseSync, baseN := p99(baseStart, time.Now())

	// Saturate sendmedia: four uploaders of 20 MiB videos, 2 MiB chunks.
	video := mediatest.MP4WithData(20 << 20)
	var uploaded, uploadFailures atomic.Int64
	mediaCtx, stopMedia := context.WithCancel(ctx)
	var uploaders sync.WaitGroup
	for _, name := range []string{"alice", "bob", "alice", "bob"} {
		c := users[name]
		uploaders.Add(1)
		go func() {
			defer uploaders.Done()
			for mediaCtx.Err() == nil {
				// imclient retries a chunk while sendmedia is down; one
				// that still fails starts a new upload.
				uctx, cancel := context.WithTimeout(mediaCtx, 2*time.Minute)
				_, err := c.Upload(uctx, bytes.NewReader(video), int64(len(video)), "video/mp4",
					imclient.UploadOptions{ChunkSize: 2 << 20, Progress: func(int64, int64) { uploaded.Add(2 << 20) }})
				cancel()
				if err != nil && mediaCtx.Err() == nil {
					uploadFailures.Add(1)
				}
			}
		}()
	}
	satStart := time.Now()
	// Wait until sendmedia is really busy: 60 MiB in.
	for uploaded.Load() < 60<<20 && ctx.Err() == nil && time.Since(satStart) < time.Minute {
		waitFor(100 * time.Millisecond)
	}
	pid, err := b.Kill("sendmedia")
	if err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	t.Logf("SIGKILLed sendmedia (pid %d) after %d MiB of uploads in %v", pid, uploaded.Load()>>20, killedAt.Sub(satStart).Round(time.Millisecond))
	if err := b.WaitReady(ctx, "sendmedia", pid, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Uploads start again on the new sendmedia; text goes on meanwhile.
	waitFor(4 * time.Second)
	stopMedia()
	uploaders.Wait()
	satEnd := time.Now()
	stopText()
	texters.Wait()

	satSend, satSync, satN := p99(satStart, satEnd)
	killSend, killSync, killN := p99(killedAt.Add(-time.Second), killedAt.Add(3*time.Second))
	t.Logf("text p99 baseline: send %v, sync %v (%d round trips)", baseSend, baseSync, baseN)
	t.Logf("text p99 with sendmedia saturated and killed: send %v, sync %v (%d round trips; %d MiB uploaded, %d uploads failed: the others' chunks were retried until the new sendmedia took them)",
		satSend, satSync, satN, uploaded.Load()>>20, uploadFailures.Load())
	t.Logf("text p99 around the kill (-1s..+3s): send %v, sync %v (%d round trips)", killSend, killSync, killN)
	for _, err := range textErr {
		t.Errorf("a text send or sync failed: %v", err)
	}
	if baseN < 20 || satN < 20 {
		t.Fatalf("too few round trips to measure: %d baseline, %d saturated", baseN, satN)
	}
	if r := b.Instance("sendmedia").Restarts; r < 2 { // once by the resume subtest, once here
		t.Errorf("sendmedia restarted %d times: it was not killed under load", r)
	}
	for _, c := range []struct {
		what      string
		got, base time.Duration
	}{{"send", satSend, baseSend}, {"sync", satSync, baseSync}} {
		if c.got > isolationP99 {
			t.Errorf("text %s p99 %v with sendmedia saturated and killed, over the bound %v (baseline %v)", c.what, c.got, isolationP99, c.base)
		}
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}
