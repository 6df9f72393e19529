// Command s3server installs and runs SeaweedFS, the real S3-compatible
// server the IM backend's S3 object store is tested against (package
// github.com/svrkit/svrkit/examples/im/s3test).
//
//	go run ./tools/s3server install   # build weed into the cache once (CI runs this)
//	go run ./tools/s3server run       # serve S3 on loopback until Ctrl-C; prints the endpoint and keys
//
// run keeps its data in a temporary directory, removed at exit: it is for
// trying the sendmedia Logicsvr's "s3" config by hand, not for keeping
// anything.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/svrkit/svrkit/examples/im/s3test"
)

const usage = `usage: s3server install | run

  install   build SeaweedFS's weed %s into %s, unless it is there
  run       start it on free loopback ports with data in a temporary directory,
            print the S3 endpoint and keys, serve until Ctrl-C
`

func main() {
	bin, _ := s3test.Binary()
	if len(os.Args) != 2 || (os.Args[1] != "install" && os.Args[1] != "run") {
		fmt.Fprintf(os.Stderr, usage, s3test.Version, bin)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Args[1] == "install" {
		path, err := s3test.Install(ctx, os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "s3server:", err)
			os.Exit(1)
		}
		fmt.Println(path)
		return
	}
	dir, err := os.MkdirTemp("", "s3server-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3server:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	srv, err := s3test.Start(ctx, dir, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3server:", err)
		os.Exit(1)
	}
	defer srv.Stop()
	fmt.Printf(`S3 is up. For the sendmedia Logicsvr's app config:
  "s3": {"endpoint": %q, "bucket": "media", "access_key": %q, "secret_key": %q, "create_bucket": true}
Ctrl-C stops it.
`, srv.Endpoint, srv.AccessKey, srv.SecretKey)
	<-ctx.Done()
}
