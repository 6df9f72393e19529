// Package handlers implements the sendmedia Logicsvr (idl/im/media.proto):
// uploads, image and video messages, and downloads. NewSendMedia is the
// constructor its generated main calls.
//
// It is a separate binary from send (text and voice) so that media traffic
// cannot take text down: its uploads, image decoding and downloads use this
// process's CPU, memory, disk and concurrency limits, and a crash of it
// leaves send and sync running (examples/im's TestMediaIsolation proves it).
//
// # Where things are
//
// Uploads in progress are staged on the local disk (app config "dir",
// uploads/): one directory per upload with its record, its data file
// (chunks written at their offsets, each fsync'd before it is acknowledged)
// and one byte per chunk marking it stored. Completed media live in the
// object store (package objstore: by default files under dir/objects, or
// an S3 bucket with "s3" in the config):
//
//	media/<id[:2]>/<id>        the MediaRecord (protobuf)
//	grants/<id>/<user id>      an empty object: the user may download <id>
//	blobs/<sha[:2]>/<sha>      content, by the SHA-256 of its bytes
//
// Content is stored once however many media hold it: the same photo sent
// twice, or forwarded, is one blob. Beyond one machine, with S3, an upload
// is staged on the instance that started it: a load balancer keeps a
// client's upload on one instance (sticky connections), or the instances
// share the staging directory.
//
// # Completing an upload
//
// CompleteUpload, under the upload's lock: every chunk must be stored; the
// SHA-256 of the data must be the declared one (checked once, then a
// "verified" marker is written, because processing changes the data in
// place); the content is processed (package media: images checked,
// stripped, thumbnailed; videos probed and their metadata boxes
// overwritten); then the record is written first and the blobs second (the
// order the sweeper's DeleteIfOlder relies on), and the staging directory
// is removed. Every step is idempotent, so a CompleteUpload interrupted by
// a crash is completed by the next one. Until it answers, nothing of the
// upload can be downloaded.
//
// # Sweeping
//
// A background sweeper (every sweep_every) deletes uploads idle for
// upload_ttl, records past their expiry (media_retention after upload)
// with their grants, and then blobs no record references that are older
// than sweep_grace (see objstore's package doc for why that is safe).
//
// # Downloads
//
// GET /cgi-bin/media/download/<id> and /cgi-bin/media/thumb/<id> are plain
// HTTP handlers (logicsvr.Host.HandleHTTP) answering Range requests with
// http.ServeContent, after the session token and the participant check (the
// uploader, or a grant written by SendImage or SendVideo before the message
// was delivered). They are bounded by max_downloads running at once.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/lru"
	"github.com/svrkit/svrkit/examples/im/internal/objstore"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// Config is the sendmedia Logicsvr's "app" settings.
type Config struct {
	// SessionSecret is the deployment's session secret (account.proto),
	// and SessionTTL the sessions' longest life (default
	// session.DefaultTTL), as the account Logicsvr has them.
	SessionSecret string            `json:"session_secret"`
	SessionTTL    logicsvr.Duration `json:"session_ttl,omitempty"`
	// Dir holds the staged uploads and, without S3, the object store.
	Dir string `json:"dir"`
	// S3 puts completed media in an S3-compatible bucket instead of
	// Dir/objects.
	S3 *objstore.S3Config `json:"s3,omitempty"`
	// UploadTTL is how long an upload stays resumable after its last
	// chunk (default 24h).
	UploadTTL logicsvr.Duration `json:"upload_ttl,omitempty"`
	// MediaRetention is how long media can be downloaded after upload
	// (default 720h, 30 days).
	MediaRetention logicsvr.Duration `json:"media_retention,omitempty"`
	// SweepEvery is how often the sweeper runs (default 10m); SweepGrace
	// how old an unreferenced blob must be before it is deleted (default
	// 1h; it must exceed the longest CompleteUpload).
	SweepEvery logicsvr.Duration `json:"sweep_every,omitempty"`
	SweepGrace logicsvr.Duration `json:"sweep_grace,omitempty"`
	// MaxDownloads bounds the downloads running at once (default 256);
	// more are answered 429.
	MaxDownloads int `json:"max_downloads,omitempty"`
	// MaxProcessing bounds the uploads being processed (hashed, decoded,
	// thumbnailed) at once (default 2): a 50-megapixel image takes
	// 200 MB to decode.
	MaxProcessing int `json:"max_processing,omitempty"`
}

func (c *Config) setDefaults() {
	if c.SessionTTL == 0 {
		c.SessionTTL = logicsvr.Duration(session.DefaultTTL)
	}
	if c.UploadTTL == 0 {
		c.UploadTTL = logicsvr.Duration(24 * time.Hour)
	}
	if c.MediaRetention == 0 {
		c.MediaRetention = logicsvr.Duration(30 * 24 * time.Hour)
	}
	if c.SweepEvery == 0 {
		c.SweepEvery = logicsvr.Duration(10 * time.Minute)
	}
	if c.SweepGrace == 0 {
		c.SweepGrace = logicsvr.Duration(time.Hour)
	}
	if c.MaxDownloads == 0 {
		c.MaxDownloads = 256
	}
	if c.MaxProcessing == 0 {
		c.MaxProcessing = 2
	}
}

// NewSendMedia returns the SendMedia handler, mounts the download handlers
// and starts the sweeper. It needs im.AccountData and im.MessageData in the
// routing table, and session_secret and dir in the app config.
func NewSendMedia(h *logicsvr.Host) (im.SendMediaServer, error) {
	var cfg Config
	if err := h.AppConfig(&cfg); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	signer, err := session.CheckerForHost(h, cfg.SessionSecret, time.Duration(cfg.SessionTTL))
	if err != nil {
		return nil, err
	}
	accounts, err := h.Client(im.AccountData_ServiceName)
	if err != nil {
		return nil, err
	}
	messages, err := h.Client(im.MessageData_ServiceName)
	if err != nil {
		return nil, err
	}
	s := newServer(cfg, signer, im.NewAccountDataClient(accounts), im.NewMessageDataClient(messages))
	s.route = shard.Router(messages)
	s.Mount(h)
	if h.InfoOnly() {
		return s, nil
	}
	if cfg.Dir == "" {
		return nil, errors.New("app config: dir is required")
	}
	if err := s.open(context.Background()); err != nil {
		return nil, err
	}
	s.startSweeper()
	h.OnShutdown(func(context.Context) error { return s.Close() })
	return s, nil
}

// The download paths; the media id follows.
const (
	DownloadPath = im.MediaDownloadPath
	ThumbPath    = im.MediaThumbPath
)

// recordTTL bounds how long a cached record or grant is trusted: how long
// a deleted media may still be downloaded from another instance.
const recordTTL = 10 * time.Second

// Server is the SendMedia handler.
type Server struct {
	im.UnimplementedSendMediaServer
	cfg      Config
	signer   *session.Checker
	accounts im.AccountDataClient
	messages im.MessageDataClient
	// route is messages' routing, for delivery.Deliver (nil: one
	// instance).
	route svrkit.KeyRouter

	store   objstore.Store
	staging *staging
	// records caches media records by id, grants the (media, user) pairs
	// known to be granted: both immutable once written, so only deletion
	// can make an entry stale, for recordTTL at most.
	records *lru.Cache[string, *im.MediaRecord]
	grants  *lru.Cache[string, bool]
	// process and download are semaphores (see Config).
	process  chan struct{}
	download chan struct{}

	stop      chan struct{}
	sweepDone chan struct{}
	now       func() time.Time
}

func newServer(cfg Config, signer *session.Checker, accounts im.AccountDataClient, messages im.MessageDataClient) *Server {
	cfg.setDefaults()
	return &Server{
		cfg:      cfg,
		signer:   signer,
		accounts: accounts,
		messages: messages,
		records:  lru.New[string, *im.MediaRecord](100_000, recordTTL),
		grants:   lru.New[string, bool](100_000, recordTTL),
		process:  make(chan struct{}, cfg.MaxProcessing),
		download: make(chan struct{}, cfg.MaxDownloads),
		stop:     make(chan struct{}),
		now:      time.Now,
	}
}

// New returns a SendMedia handler over store (nil: the one cfg names),
// with uploads staged under cfg.Dir, for tests and programs that embed it;
// NewSendMedia is what the Logicsvr uses. It does not start the sweeper
// (Sweep runs one round). Register it with im.RegisterSendMediaServer and
// Mount it on the host.
func New(cfg Config, store objstore.Store, accounts im.AccountDataClient, messages im.MessageDataClient, signer *session.Checker) (*Server, error) {
	s := newServer(cfg, signer, accounts, messages)
	s.store = store
	if err := s.open(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// Mount installs, on h, the session check of the SendMedia service and
// the download handlers. NewSendMedia does it; a program that calls New
// does it itself.
func (s *Server) Mount(h *logicsvr.Host) {
	h.Use(s.signer.Require(im.SendMedia_ServiceName))
	h.HandleHTTP("GET "+DownloadPath+"{media_id}", s.downloadHandler(false))
	h.HandleHTTP("GET "+ThumbPath+"{media_id}", s.downloadHandler(true))
}

// open opens the object store (unless given) and the staging area.
func (s *Server) open(ctx context.Context) error {
	if s.store == nil {
		var err error
		if s.cfg.S3 != nil {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			s.store, err = objstore.OpenS3(ctx, *s.cfg.S3)
		} else {
			s.store, err = objstore.OpenDir(filepath.Join(s.cfg.Dir, "objects"))
		}
		if err != nil {
			return err
		}
	}
	st, err := openStaging(filepath.Join(s.cfg.Dir, "uploads"))
	if err != nil {
		return fmt.Errorf("sendmedia: %w", err)
	}
	s.staging = st
	return nil
}

// Close stops the sweeper and closes the store.
func (s *Server) Close() error {
	close(s.stop)
	if s.sweepDone != nil {
		<-s.sweepDone
	}
	return s.store.Close()
}
