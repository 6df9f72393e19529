package objstore

import (
	"context"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/s3test"
)

// TestS3 runs the Store contract against a real S3 server, SeaweedFS,
// which s3test builds and starts on this machine.
func TestS3(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs SeaweedFS")
	}
	srv := s3test.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := OpenS3(ctx, S3Config{Endpoint: srv.Endpoint, Bucket: "objstore-test", Prefix: "im/",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testStore(t, s)

	// A wrong secret is refused, not ignored.
	_, err = OpenS3(ctx, S3Config{Endpoint: srv.Endpoint, Bucket: "objstore-test", AccessKey: srv.AccessKey, SecretKey: "wrong"})
	if err == nil {
		t.Fatal("opened the bucket with a wrong secret key")
	}
}
