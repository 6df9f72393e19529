package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says where an S3 store is. It is the "s3" object of the
// sendmedia Logicsvr's app config.
type S3Config struct {
	// Endpoint is the service's host:port, e.g. "s3.amazonaws.com" or
	// "127.0.0.1:8333".
	Endpoint string `json:"endpoint"`
	// Secure uses HTTPS.
	Secure bool   `json:"secure,omitempty"`
	Region string `json:"region,omitempty"`
	Bucket string `json:"bucket"`
	// Prefix is put before every key, so that deployments may share a
	// bucket ("im/" say).
	Prefix    string `json:"prefix,omitempty"`
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	// CreateBucket creates the bucket when it does not exist.
	CreateBucket bool `json:"create_bucket,omitempty"`
}

// S3 is a Store in an S3-compatible service.
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string
}

// OpenS3 connects to the bucket cfg names and checks it exists (or
// creates it, with CreateBucket).
func OpenS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("objstore: s3 needs an endpoint and a bucket")
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.Secure,
		Region: cfg.Region,
		// Path-style requests work with every S3-compatible server.
		BucketLookup: minio.BucketLookupPath,
		Transport:    s3Transport(),
		MaxRetries:   3,
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: s3: %w", err)
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("objstore: s3 %s: bucket %s: %w", cfg.Endpoint, cfg.Bucket, err)
	}
	if !ok {
		if !cfg.CreateBucket {
			return nil, fmt.Errorf("objstore: s3 %s: no bucket %s (set create_bucket to create it)", cfg.Endpoint, cfg.Bucket)
		}
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			return nil, fmt.Errorf("objstore: s3 %s: creating bucket %s: %w", cfg.Endpoint, cfg.Bucket, err)
		}
	}
	return &S3{c: c, bucket: cfg.Bucket, prefix: cfg.Prefix}, nil
}

func s3Transport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	t.ResponseHeaderTimeout = time.Minute
	return t
}

// isNotFound reports whether err is S3's answer for a missing key.
func isNotFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey"
}

func (s *S3) wrap(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return fmt.Errorf("objstore: s3 %s %s: %w", op, key, err)
}

// Put implements Store. Large objects go up in 16 MiB parts; S3 makes the
// object visible only when the last part is in.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	er := &exactReader{r: r, left: size}
	_, err := s.c.PutObject(ctx, s.bucket, s.prefix+key, er, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    16 << 20,
	})
	if err != nil {
		return s.wrap("put", key, err)
	}
	if er.left != 0 {
		return fmt.Errorf("objstore: s3 put %s: %w", key, errSize)
	}
	return nil
}

// Open implements Store. Reads are ranged GETs, made as the object is
// read.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	info, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	o, err := s.c.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	return &s3Object{Object: o, info: info}, nil
}

type s3Object struct {
	*minio.Object
	info Info
}

func (o *s3Object) Info() Info { return o.info }

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	oi, err := s.c.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.wrap("stat", key, err)
	}
	return Info{Key: key, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return s.wrap("delete", key, err)
	}
	return nil
}

// DeleteIfOlder implements Store, with the window the package doc
// describes between its check and its delete.
func (s *S3) DeleteIfOlder(ctx context.Context, key string, cutoff time.Time) (bool, error) {
	info, err := s.Stat(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !info.ModTime.Before(cutoff) {
		return false, nil
	}
	return true, s.Delete(ctx, key)
}

// List implements Store.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn fails
	for oi := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if oi.Err != nil {
			return s.wrap("list", prefix, oi.Err)
		}
		key := strings.TrimPrefix(oi.Key, s.prefix)
		if strings.HasSuffix(key, "/") {
			continue // a directory marker some servers list
		}
		if err := fn(Info{Key: key, Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Store.
func (s *S3) Close() error { return nil }
