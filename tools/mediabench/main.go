// Command mediabench measures media uploads and downloads through the
// sendmedia Logicsvr's CGIs beside a plain net/http file server doing the
// same job in the same run, and the time to finish an upload cut half way.
//
//	go run ./tools/svrkit up examples/im     # terminal 1
//	go run ./tools/mediabench -runs 3
//
// For each size (-sizes, default 1 MiB and 20 MiB) it uploads -n objects
// one after another, then downloads each, and reports throughput (MB/s,
// 10^6 bytes) and the p99 of one object's time:
//
//   - sendmedia: imclient.Upload (StartUpload, UploadChunk in -chunk
//     chunks, each fsync'd, CompleteUpload: SHA-256 check, container
//     probe, the blob moved into the object store, all fsync'd), then
//     imclient.Download (GET with the session token, the participant
//     check, http.ServeContent). The objects are MP4 videos, so that what
//     is measured is the transport and storage path, not image decoding
//     (media's BenchmarkProcessImage measures that).
//   - net/http: one PUT of the whole object to a handler that streams it
//     to a temporary file while hashing it (SHA-256), fsyncs it and renames
//     it into place; a GET served by http.ServeFile. Same machine, same
//     loopback, same disk.
//
// Resume: a 20 MiB upload is cut once half of it is stored; the time to
// finish it (GetUpload, the missing chunks, CompleteUpload) is compared
// with what a client of the plain server does, send all 20 MiB again.
//
// Every object has distinct content, so no upload is a deduplicated
// one. The report is medians over -runs runs.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/examples/im/mediatest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mediabench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	state := fs.String("up", "examples/im/.data/up.json", "svrkit up's state file of the running backend")
	sizesFlag := fs.String("sizes", "1MiB,20MiB", "object sizes")
	n := fs.Int("n", 0, "objects per size and run (default: 20 of 1 MiB, 5 of 20 MiB, so each size moves about 100 MiB)")
	chunk := fs.Int("chunk", 2<<20, "sendmedia chunk size in bytes")
	runs := fs.Int("runs", 3, "runs; the report has the median of each figure")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		v, err := parseSize(s)
		if err != nil {
			fmt.Fprintf(stderr, "mediabench: -sizes: %v\n", err)
			return 2
		}
		sizes = append(sizes, v)
	}
	addrs, err := imclient.ReadStateFile(*state)
	if err != nil || addrs.Media == "" {
		fmt.Fprintf(stderr, "mediabench: no sendmedia in %s (%v)\nis the backend running? start it with: go run ./tools/svrkit up examples/im\n", *state, err)
		return 1
	}
	b, err := newBench(ctx, addrs, *chunk)
	if err != nil {
		fmt.Fprintf(stderr, "mediabench: %v\n", err)
		return 1
	}
	defer b.close()
	var results []map[string]figure
	for r := range *runs {
		res := map[string]figure{}
		for _, size := range sizes {
			count := *n
			if count == 0 {
				count = max(2, (100<<20)/size)
			}
			for _, f := range b.measure(ctx, size, count) {
				res[f.key()] = f
			}
			if ctx.Err() != nil {
				return 1
			}
		}
		for _, f := range b.resume(ctx, 20<<20) {
			res[f.key()] = f
		}
		if b.err != nil {
			fmt.Fprintf(stderr, "mediabench: %v\n", b.err)
			return 1
		}
		fmt.Fprintf(stderr, "run %d of %d done\n", r+1, *runs)
		results = append(results, res)
	}
	report(stdout, results)
	return 0
}

func parseSize(s string) (int, error) {
	s = strings.TrimSpace(s)
	mult := 1
	for suf, m := range map[string]int{"KiB": 1 << 10, "MiB": 1 << 20} {
		if strings.HasSuffix(s, suf) {
			s, mult = strings.TrimSuffix(s, suf), m
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a size like 1MiB", s)
	}
	return v * mult, nil
}

// figure is one measured row.
type figure struct {
	system, op string
	size       int
	mbps       float64
	p99        time.Duration
}

func (f figure) key() string { return fmt.Sprintf("%s|%s|%d", f.op, f.system, f.size) }

type bench struct {
	cl    *imclient.Client
	plain *plainServer
	chunk int
	err   error
}

func newBench(ctx context.Context, addrs imclient.Addrs, chunk int) (*bench, error) {
	cl := imclient.New(addrs)
	var r [4]byte
	_, _ = rand.Read(r[:])
	name, pw := "mediabench_"+hex.EncodeToString(r[:]), "mediabench-password"
	if _, err := cl.Register(ctx, name, pw, ""); err != nil {
		return nil, err
	}
	if _, err := cl.Login(ctx, name, pw, "bench"); err != nil {
		return nil, err
	}
	p, err := startPlain()
	if err != nil {
		return nil, err
	}
	return &bench{cl: cl, plain: p, chunk: chunk}, nil
}

func (b *bench) close() { b.plain.close() }

// object returns a distinct MP4 of size bytes.
func object(size int) []byte {
	v := mediatest.MP4WithData(max(0, size-8000))
	_, _ = rand.Read(v[len(v)-64:]) // in mdat: distinct content, still a valid container
	return v
}

// measure uploads and downloads count objects of size through both
// systems, interleaved object by object so both see the same machine.
func (b *bench) measure(ctx context.Context, size, count int) []figure {
	type times struct{ up, down []time.Duration }
	var sm, pl times
	var bytesUp int64
	for i := 0; i < count && b.err == nil && ctx.Err() == nil; i++ {
		obj := object(size)
		bytesUp += int64(len(obj))
		t0 := time.Now()
		info, err := b.cl.Upload(ctx, bytes.NewReader(obj), int64(len(obj)), "video/mp4", imclient.UploadOptions{ChunkSize: uint32(b.chunk)})
		if err != nil {
			b.err = fmt.Errorf("sendmedia upload: %w", err)
			break
		}
		sm.up = append(sm.up, time.Since(t0))
		t0 = time.Now()
		name, err := b.plain.put(ctx, obj)
		if err != nil {
			b.err = fmt.Errorf("net/http upload: %w", err)
			break
		}
		pl.up = append(pl.up, time.Since(t0))

		t0 = time.Now()
		d, err := b.cl.Download(ctx, info.GetMediaId(), false, 0, io.Discard)
		if err != nil || d.Written != int64(len(obj)) {
			b.err = fmt.Errorf("sendmedia download: %v (%v)", err, d)
			break
		}
		sm.down = append(sm.down, time.Since(t0))
		t0 = time.Now()
		if err := b.plain.get(ctx, name, len(obj)); err != nil {
			b.err = fmt.Errorf("net/http download: %w", err)
			break
		}
		pl.down = append(pl.down, time.Since(t0))
	}
	fig := func(system, op string, ds []time.Duration) figure {
		var total time.Duration
		for _, d := range ds {
			total += d
		}
		f := figure{system: system, op: op, size: size, p99: percentile(ds, 0.99)}
		if total > 0 {
			f.mbps = float64(bytesUp) / 1e6 / total.Seconds()
		}
		return f
	}
	return []figure{fig("sendmedia", "upload", sm.up), fig("net/http", "upload", pl.up),
		fig("sendmedia", "download", sm.down), fig("net/http", "download", pl.down)}
}

// resume cuts a size-byte upload at half and times its completion, against
// the plain server's only option, a whole new PUT.
func (b *bench) resume(ctx context.Context, size int) []figure {
	if b.err != nil {
		return nil
	}
	obj := object(size)
	var id string
	_, err := b.cl.Upload(ctx, bytes.NewReader(obj), int64(len(obj)), "video/mp4",
		imclient.UploadOptions{ChunkSize: uint32(b.chunk), StopAfter: int64(len(obj)) / 2, Started: func(u string) { id = u }})
	if !errors.Is(err, imclient.ErrStopped) {
		b.err = fmt.Errorf("the cut upload: %v", err)
		return nil
	}
	t0 := time.Now()
	if _, err := b.cl.Upload(ctx, bytes.NewReader(obj), int64(len(obj)), "video/mp4", imclient.UploadOptions{UploadID: id}); err != nil {
		b.err = fmt.Errorf("resuming: %w", err)
		return nil
	}
	resumed := time.Since(t0)
	t0 = time.Now()
	if _, err := b.plain.put(ctx, obj); err != nil {
		b.err = err
		return nil
	}
	again := time.Since(t0)
	return []figure{{system: "sendmedia", op: "resume", size: size, p99: resumed}, {system: "net/http", op: "resume", size: size, p99: again}}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func report(w io.Writer, runs []map[string]figure) {
	keys := map[string]bool{}
	for _, r := range runs {
		for k := range r {
			keys[k] = true
		}
	}
	median := func(k string) figure {
		var fs []figure
		for _, r := range runs {
			if f, ok := r[k]; ok {
				fs = append(fs, f)
			}
		}
		slices.SortFunc(fs, func(a, b figure) int { return int(a.p99 - b.p99) })
		f := fs[len(fs)/2]
		mb := make([]float64, len(fs))
		for i, x := range fs {
			mb[i] = x.mbps
		}
		slices.Sort(mb)
		f.mbps = mb[len(mb)/2]
		return f
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tsize\tsendmedia MB/s\tnet/http MB/s\tratio\tsendmedia p99\tnet/http p99\t")
	var ks []string
	for k := range keys {
		if strings.HasPrefix(k, "upload|sendmedia|") || strings.HasPrefix(k, "download|sendmedia|") {
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, func(a, b string) int {
		pa, pb := strings.Split(a, "|"), strings.Split(b, "|")
		if pa[0] != pb[0] {
			return -strings.Compare(pa[0], pb[0]) // upload first
		}
		sa, _ := strconv.Atoi(pa[2])
		sb, _ := strconv.Atoi(pb[2])
		return sa - sb
	})
	for _, k := range ks {
		p := strings.Split(k, "|")
		s, h := median(k), median(p[0]+"|net/http|"+p[2])
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.2f×\t%v\t%v\t\n", p[0], sizeName(s.size), s.mbps, h.mbps, s.mbps/h.mbps,
			s.p99.Round(100*time.Microsecond), h.p99.Round(100*time.Microsecond))
	}
	tw.Flush()
	for k := range keys {
		if strings.HasPrefix(k, "resume|sendmedia|") {
			p := strings.Split(k, "|")
			s, h := median(k), median("resume|net/http|"+p[2])
			fmt.Fprintf(w, "\nresume a %s upload cut at 50%%: sendmedia %v (GetUpload, the missing half, CompleteUpload); net/http sends it all again: %v (%.2f×)\n",
				sizeName(s.size), s.p99.Round(time.Millisecond), h.p99.Round(time.Millisecond), float64(h.p99)/float64(s.p99))
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.Itoa(n>>20) + " MiB"
	}
	return strconv.Itoa(n) + " B"
}

// plainServer is the peer: PUT streams the body to a file, hashing it,
// fsyncs and renames it; GET is http.ServeFile.
type plainServer struct {
	dir  string
	srv  *http.Server
	base string
	hc   *http.Client
}

func startPlain() (*plainServer, error) {
	dir, err := os.MkdirTemp("", "mediabench-plain-")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &plainServer{dir: dir, base: "http://" + ln.Addr().String(), hc: &http.Client{}}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.CreateTemp(dir, "put-*")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		h := sha256.New()
		_, err = io.Copy(io.MultiWriter(f, h), r.Body)
		if err == nil {
			err = f.Sync()
		}
		f.Close()
		if err == nil && hex.EncodeToString(h.Sum(nil)) != r.Header.Get("X-Sha256") {
			err = errors.New("sha256 mismatch")
		}
		if err == nil {
			err = os.Rename(f.Name(), filepath.Join(dir, r.PathValue("name")))
		}
		if err != nil {
			os.Remove(f.Name())
			http.Error(w, err.Error(), 500)
			return
		}
		d, _ := os.Open(dir)
		_ = d.Sync()
		d.Close()
	})
	mux.HandleFunc("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, r.PathValue("name")))
	})
	p.srv = &http.Server{Handler: mux}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *plainServer) put(ctx context.Context, obj []byte) (string, error) {
	sum := sha256.Sum256(obj)
	name := hex.EncodeToString(sum[:])
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, p.base+"/files/"+name, bytes.NewReader(obj))
	req.Header.Set("X-Sha256", name)
	res, err := p.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return "", fmt.Errorf("PUT: %s %s", res.Status, b)
	}
	return name, nil
}

func (p *plainServer) get(ctx context.Context, name string, size int) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/files/"+name, nil)
	res, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	if err == nil && n != int64(size) {
		err = fmt.Errorf("GET: %d bytes of %d", n, size)
	}
	return err
}

func (p *plainServer) close() {
	_ = p.srv.Close()
	os.RemoveAll(p.dir)
}
