// Package s3test installs and runs a real S3-compatible server for tests
// and benchmarks: SeaweedFS's weed, built from the Go module proxy at a
// pinned version into the user's cache directory, started on free loopback
// ports with its data in a temporary directory, and stopped by the test's
// cleanup. The S3 object store of package objstore is tested against it: a
// fake S3 (an in-process imitation of the API) would test our idea of S3,
// not S3.
//
// Install builds weed once (several minutes on two cores: SeaweedFS is
// large); CI runs `go run ./tools/s3server install` before the tests so
// that they find it. Start builds it too if it is missing, so a developer
// needs no step of their own.
package s3test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Module and Version are the SeaweedFS module weed is built from. The
// Version is pinned: a test run builds the same server every time.
const (
	Module  = "github.com/seaweedfs/seaweedfs"
	Version = "v0.0.0-20261109003541-7506e5f91cd6"
)

// Binary is where Install puts weed: under the user's cache directory
// ($XDG_CACHE_HOME or ~/.cache), svrkit/bin/weed-<Version>.
func Binary() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "svrkit", "bin", "weed-"+Version), nil
}

var installMu sync.Mutex

// Install builds weed at Binary unless it is there, logging what it does
// to log, and returns its path. The module comes from the Go module proxy
// (go mod download); it is built in a copy of its directory, because its
// go.mod has replace directives that `go install module@version` refuses.
func Install(ctx context.Context, log io.Writer) (string, error) {
	installMu.Lock()
	defer installMu.Unlock()
	bin, err := Binary()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockInstall(ctx, bin+".lock", func() {
		fmt.Fprintf(log, "s3test: waiting for another process building weed into %s\n", bin)
	})
	if err != nil {
		return "", fmt.Errorf("s3test: locking %s.lock: %w", bin, err)
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another process built it while we waited
	}
	fmt.Fprintf(log, "s3test: building SeaweedFS's weed %s into %s (once; several minutes)\n", Version, bin)
	tmp, err := os.MkdirTemp("", "s3test-download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	dl := exec.CommandContext(ctx, "go", "mod", "download", "-json", Module+"@"+Version)
	dl.Dir = tmp // outside any module
	dl.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := dl.Output()
	if err != nil {
		return "", fmt.Errorf("s3test: go mod download %s@%s: %w\n%s", Module, Version, err, exitStderr(err))
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("s3test: go mod download said %s", out)
	}
	src := filepath.Join(filepath.Dir(filepath.Dir(bin)), "src", "seaweedfs-"+Version)
	if _, err := os.Stat(filepath.Join(src, "go.mod")); err != nil {
		if err := copyTree(mod.Dir, src+".tmp"); err != nil {
			return "", fmt.Errorf("s3test: copying the module: %w", err)
		}
		if err := os.Rename(src+".tmp", src); err != nil {
			return "", err
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+".tmp", "./weed")
	build.Dir = src
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
	build.Stdout, build.Stderr = log, log
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("s3test: building weed: %w", err)
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "s3test: built %s\n", bin)
	return bin, nil
}

func exitStderr(err error) []byte {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Stderr
	}
	return nil
}

// copyTree copies the regular files and directories under from to to,
// writable (the module cache is read-only).
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if e.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// Server is a running weed serving S3.
type Server struct {
	// Endpoint is the S3 API's host:port; AccessKey and SecretKey an
	// identity allowed everything.
	Endpoint             string
	AccessKey, SecretKey string

	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedBuffer
}

// startTimeout bounds a start: weed runs a master, a volume server, a
// filer and the S3 gateway, each waiting for the one before.
const startTimeout = 2 * time.Minute

// Start starts weed (Installing it first if needed) with its data in dir,
// and returns once its S3 API answers an authenticated request.
//
// The ports are found free and then handed to weed, and in between another
// process may take one (tests run in parallel): a weed that exits because
// a port is in use is started again on fresh ports, a few times.
func Start(ctx context.Context, dir string, log io.Writer) (*Server, error) {
	bin, err := Install(ctx, log)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		run := filepath.Join(dir, "run"+strconv.Itoa(attempt))
		if err := os.MkdirAll(run, 0o700); err != nil {
			return nil, err
		}
		s, err := start(ctx, bin, run)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return s, err
		}
		fmt.Fprintf(log, "s3test: a port was taken before weed bound it; starting again on others\n")
	}
}

// start is one attempt of Start, with its data in dir.
func start(ctx context.Context, bin, dir string) (*Server, error) {
	ports, err := freePorts(8)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  "127.0.0.1:" + strconv.Itoa(ports[6]),
		AccessKey: "svrkit-test",
		SecretKey: "svrkit-test-secret",
		done:      make(chan struct{}),
		log:       &lockedBuffer{},
	}
	conf := fmt.Sprintf(`{"identities": [{"name": "svrkit", "credentials": [{"accessKey": %q, "secretKey": %q}],
		"actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}`, s.AccessKey, s.SecretKey)
	confPath := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	s.cmd = exec.Command(bin, "server",
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir="+data,
		"-master.port="+p(0), "-master.port.grpc="+p(1), "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
		"-volume.port="+p(2), "-volume.port.grpc="+p(3), "-volume.max=16",
		"-filer", "-filer.port="+p(4), "-filer.port.grpc="+p(5), "-filer.localSocket="+filepath.Join(dir, "filer.sock"),
		"-s3", "-s3.port="+p(6), "-s3.port.grpc="+p(7), "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.config="+confPath, "-s3.localSocket="+filepath.Join(dir, "s3.sock"),
	)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = procAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("s3test: starting weed: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\nweed's output:\n%s", err, s.Output())
	}
	return s, nil
}

// waitReady polls the S3 API, bounded by startTimeout.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), MaxRetries: 1})
	if err != nil {
		return err
	}
	const bucket = "s3test-ready"
	for {
		attempt, acancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.MakeBucket(attempt, bucket, minio.MakeBucketOptions{})
		if err != nil {
			if r := minio.ToErrorResponse(err); r.Code == "BucketAlreadyOwnedByYou" || r.Code == "BucketAlreadyExists" {
				err = nil
			}
		}
		if err == nil {
			// The filer can take a moment after the bucket to take objects.
			_, err = c.PutObject(attempt, bucket, "ready", bytes.NewReader([]byte("ok")), 2, minio.PutObjectOptions{})
		}
		acancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return errors.New("s3test: weed exited before its S3 API answered")
		case <-ctx.Done():
			return fmt.Errorf("s3test: weed's S3 API did not answer within %v: %v", startTimeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop stops weed: SIGTERM, then SIGKILL of its process group after 10s.
func (s *Server) Stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// Output is what weed printed.
func (s *Server) Output() string { return s.log.String() }

// StartT is Start for a test: data in the test's temporary directory, the
// server stopped by its cleanup, and a failure fatal.
func StartT(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute) // a first build included
	defer cancel()
	s, err := Start(ctx, t.TempDir(), testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// freePorts returns n free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
