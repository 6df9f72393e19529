package logicsvr

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is a Logicsvr's deployment: where it listens, how it drains, how it
// logs, the per-method overrides of the IDL's limits, and the routing table
// of the services it calls. It is read from a JSON file (LoadConfig) and
// then overridden by command-line flags (BindFlags), so the same binary runs
// from a checked-in file in production and from flags in a test.
//
//	{
//	  "name":  "account",
//	  "http":  "0.0.0.0:8080",
//	  "rpc":   "10.0.0.5:7070",
//	  "admin": "127.0.0.1:9090",
//	  "auth": {"key_file": "/etc/im/keys/account.key", "keyring_file": "/etc/im/keys/keyring.json"},
//	  "drain_timeout": "10s",
//	  "drain_delay":   "2s",
//	  "log_level": "info",
//	  "log_format": "json",
//	  "methods": {
//	    "/im.Account/Login": {"max_concurrent": 200, "timeout": "500ms"}
//	  },
//	  "routes": {
//	    "im.AccountStore": ["10.0.0.7:7101", "10.0.0.8:7101"]
//	  }
//	}
//
// The routes object has the shape of the "services" object of svrkit's
// routing file (see svrkit.RouteTable): protobuf service name to endpoints.
// Instead of routes, routes_file may name a separate routing file. Either
// way the table is re-read when the file changes, without a restart; the
// listen addresses and everything else are read once at start.
type Config struct {
	// Name is the Logicsvr's name, from the IDL. The generated main sets
	// it; a config file that names another Logicsvr is refused, which
	// catches a config deployed beside the wrong binary.
	Name string `json:"name,omitempty"`

	// HTTP, RPC and Admin are the listen addresses of the CGI front, the
	// binary RPC server and the admin endpoints ("host:port"; port 0 picks
	// a free one). Empty means the default: 127.0.0.1:8080,
	// 127.0.0.1:7070 and 127.0.0.1:9090 — loopback, so that nothing is
	// reachable from other machines until a deployment says so ("off"
	// disables HTTP or RPC). A Logicsvr whose services have no CGI paths
	// (a data or storage service) does not serve HTTP at all unless
	// HTTPInternal is set.
	HTTP  string `json:"http,omitempty"`
	RPC   string `json:"rpc,omitempty"`
	Admin string `json:"admin,omitempty"`

	// Auth turns on service authentication for the binary RPC: the server
	// accepts only callers that prove an identity in the keyring, and only
	// those the IDL lists as callers of each service; the Logicsvr's
	// clients prove its own identity. Without it, any process that reaches
	// the RPC port may call every method — acceptable on one machine's
	// loopback only.
	Auth *AuthConfig `json:"auth,omitempty"`

	// Dev marks a development run (svrkit up sets it): handlers may then
	// accept development secrets that a production run must refuse.
	Dev bool `json:"dev,omitempty"`

	// HTTPInternal serves the services without CGI paths over HTTP too,
	// at their Connect routes (off by default: those are internal
	// services, and HTTP has no service authentication). HTTPDescribe
	// serves the describe method over HTTP (off by default: a public
	// front should not hand out its schema; the RPC port serves it to
	// authenticated callers).
	HTTPInternal bool `json:"http_internal,omitempty"`
	HTTPDescribe bool `json:"http_describe,omitempty"`
	// HTTPReadTimeout bounds reading one HTTP request, body included
	// (default 30s): a client that trickles its body cannot hold a
	// connection longer. HTTPIdleTimeout closes idle keep-alive
	// connections (default 2m). MaxHTTPConns bounds the open HTTP
	// connections (default 4096); more wait to be accepted.
	HTTPReadTimeout Duration `json:"http_read_timeout,omitempty"`
	HTTPIdleTimeout Duration `json:"http_idle_timeout,omitempty"`
	MaxHTTPConns    int      `json:"max_http_conns,omitempty"`

	// DrainDelay is how long the Logicsvr keeps serving, with readiness
	// already false, after it is told to stop: the time a load balancer
	// needs to notice and stop sending. Default 0.
	DrainDelay Duration `json:"drain_delay,omitempty"`
	// DrainTimeout bounds the wait for in-flight calls after listeners
	// close; calls still running then are canceled. Default 10s.
	DrainTimeout Duration `json:"drain_timeout,omitempty"`

	// DefaultTimeout bounds calls to methods without an IDL timeout.
	// Default 0: unbounded.
	DefaultTimeout Duration `json:"default_timeout,omitempty"`
	// MaxBodyBytes bounds HTTP request bodies (default 4 MiB).
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`
	// MaxConcurrent bounds the binary RPC calls running at once in the
	// process (default 65536); per-method bounds come from the IDL.
	MaxConcurrent int `json:"max_concurrent,omitempty"`

	// LogLevel is debug, info, warn or error (default info); LogFormat is
	// text or json (default text).
	LogLevel  string `json:"log_level,omitempty"`
	LogFormat string `json:"log_format,omitempty"`

	// Methods overrides the IDL's limits per method, by full name
	// ("/pkg.Service/Method").
	Methods map[string]MethodLimits `json:"methods,omitempty"`

	// Routes is the routing table of the services this Logicsvr calls.
	Routes map[string][]string `json:"routes,omitempty"`
	// RoutesFile names a svrkit routing file to use instead of Routes.
	RoutesFile string `json:"routes_file,omitempty"`
	// Shards splits a service this Logicsvr calls among shard groups, by
	// the hash of each call's routing key (svrkit.ShardedInvoker): service
	// name to its shards, each a range of key hashes starting at "from"
	// (hex, "0" for the first) and served by "group", a name the routing
	// table lists with the group's endpoints:
	//
	//	"shards": {"im.Storage": [{"from": "0", "group": "im.Storage/0"},
	//	                          {"from": "8000000000000000", "group": "im.Storage/1"}]},
	//	"routes": {"im.Storage/0": ["10.0.0.1:7100", ...], "im.Storage/1": [...]}
	//
	// The groups' endpoints follow the routing table as it changes; the
	// shard map itself is read once, at start (moving a range moves data).
	Shards map[string][]ShardRange `json:"shards,omitempty"`

	// App is the Logicsvr's own settings (a data directory, secrets, the
	// sizes of its caches): JSON the host passes through untouched for the
	// handlers to read with Host.AppConfig. Keeping them in the same file
	// means one file describes one deployment.
	App json.RawMessage `json:"app,omitempty"`

	// path is the file the config was loaded from, re-read for routes.
	path string
}

// ShardRange is one shard of a sharded service (Config.Shards).
type ShardRange struct {
	// From is the first key hash the shard owns, in hex.
	From string `json:"from"`
	// Group is the routing table's name for the shard's endpoints.
	Group string `json:"group"`
}

// AuthConfig is where a Logicsvr finds its service credentials (see
// svrkit.GenerateKeys for the files).
type AuthConfig struct {
	// Identity is who this Logicsvr is to the services it calls; default
	// its name.
	Identity string `json:"identity,omitempty"`
	// KeyFile is its Ed25519 private key (PEM, mode 0600).
	KeyFile string `json:"key_file"`
	// KeyringFile lists the public keys of the identities it trusts.
	KeyringFile string `json:"keyring_file"`
	// Operators are identities that may call every service (`svrkit
	// call` with an operator key); default ["operator"].
	Operators []string `json:"operators,omitempty"`
}

// MethodLimits are the limits of one method. Zero fields keep the IDL's.
type MethodLimits struct {
	// MaxConcurrent bounds the method's calls running at once.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
	// Timeout bounds one call (the caller's deadline may be earlier).
	Timeout Duration `json:"timeout,omitempty"`
}

// Duration is a time.Duration that reads and writes JSON as "1.5s".
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler. It takes a Go duration string
// or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration must be a string like \"1.5s\": %s", b)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Defaults of the listen addresses and the drain bound.
const (
	DefaultHTTPAddr        = "127.0.0.1:8080"
	DefaultRPCAddr         = "127.0.0.1:7070"
	DefaultAdminAddr       = "127.0.0.1:9090"
	DefaultDrainTimeout    = 10 * time.Second
	DefaultHTTPReadTimeout = 30 * time.Second
	DefaultHTTPIdleTimeout = 2 * time.Minute
	DefaultMaxHTTPConns    = 4096
	// Off disables the HTTP front or the RPC server.
	Off = "off"
)

// LoadConfig reads a config file. Unknown fields are errors: a misspelt key
// would otherwise be silently ignored in production.
func LoadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("logicsvr: config: %w", err)
	}
	c, err := parseConfig(raw)
	if err != nil {
		return Config{}, fmt.Errorf("logicsvr: config %s: %w", path, err)
	}
	c.path = path
	return c, nil
}

// decodeStrict decodes raw into v, refusing fields v does not have.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func parseConfig(raw []byte) (Config, error) {
	var c Config
	if err := decodeStrict(raw, &c); err != nil {
		return Config{}, err
	}
	if c.Routes != nil && c.RoutesFile != "" {
		return Config{}, errors.New(`set "routes" or "routes_file", not both`)
	}
	if a := c.Auth; a != nil && (a.KeyFile == "" || a.KeyringFile == "") {
		return Config{}, errors.New(`"auth" needs "key_file" and "keyring_file"`)
	}
	for svc, shards := range c.Shards {
		for _, sh := range shards {
			if _, err := strconv.ParseUint(sh.From, 16, 64); err != nil || sh.Group == "" {
				return Config{}, fmt.Errorf("shards: service %s: shard %+v needs a hex \"from\" and a \"group\"", svc, sh)
			}
		}
	}
	for svc, addrs := range c.Routes {
		for _, a := range addrs {
			if a == "" {
				return Config{}, fmt.Errorf("routes: service %s: empty endpoint", svc)
			}
		}
	}
	return c, nil
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.HTTP == "" {
		c.HTTP = DefaultHTTPAddr
	}
	if c.RPC == "" {
		c.RPC = DefaultRPCAddr
	}
	if c.Admin == "" {
		c.Admin = DefaultAdminAddr
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = Duration(DefaultDrainTimeout)
	}
	if c.HTTPReadTimeout == 0 {
		c.HTTPReadTimeout = Duration(DefaultHTTPReadTimeout)
	}
	if c.HTTPIdleTimeout == 0 {
		c.HTTPIdleTimeout = Duration(DefaultHTTPIdleTimeout)
	}
	if c.MaxHTTPConns == 0 {
		c.MaxHTTPConns = DefaultMaxHTTPConns
	}
	if c.Auth != nil {
		a := *c.Auth
		if a.Identity == "" {
			a.Identity = c.Name
		}
		if a.Operators == nil {
			a.Operators = []string{"operator"}
		}
		c.Auth = &a
	}
	return c
}

// Flags are the command-line flags of a Logicsvr binary, bound by
// BindFlags. Set flags override the config file.
type Flags struct {
	fs           *flag.FlagSet
	ConfigPath   string
	PrintInfo    bool
	http, rpc    string
	admin        string
	drainDelay   time.Duration
	drainTimeout time.Duration
	logLevel     string
	logFormat    string
	routesFile   string
}

// BindFlags defines the Logicsvr flags on fs.
func BindFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.ConfigPath, "config", "", "config `file` (JSON; see package logicsvr)")
	fs.BoolVar(&f.PrintInfo, "buildinfo", false, "print the build info (version, services, CGIs) as JSON and exit")
	fs.StringVar(&f.http, "http", "", "HTTP CGI listen `address` (default "+DefaultHTTPAddr+"; off disables)")
	fs.StringVar(&f.rpc, "rpc", "", "binary RPC listen `address` (default "+DefaultRPCAddr+"; off disables)")
	fs.StringVar(&f.admin, "admin", "", "admin listen `address`: health, metrics, pprof (default "+DefaultAdminAddr+")")
	fs.DurationVar(&f.drainDelay, "drain-delay", 0, "keep serving this long, not ready, after SIGTERM")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", 0, "bound on draining in-flight calls (default 10s)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "", "text or json")
	fs.StringVar(&f.routesFile, "routes", "", "svrkit routing `file` of the services this Logicsvr calls")
	return f
}

// Config loads the config file (if -config was given) and applies the set
// flags over it.
func (f *Flags) Config() (Config, error) {
	var c Config
	if f.ConfigPath != "" {
		var err error
		if c, err = LoadConfig(f.ConfigPath); err != nil {
			return Config{}, err
		}
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["http"] {
		c.HTTP = f.http
	}
	if set["rpc"] {
		c.RPC = f.rpc
	}
	if set["admin"] {
		c.Admin = f.admin
	}
	if set["drain-delay"] {
		c.DrainDelay = Duration(f.drainDelay)
	}
	if set["drain-timeout"] {
		c.DrainTimeout = Duration(f.drainTimeout)
	}
	if set["log-level"] {
		c.LogLevel = f.logLevel
	}
	if set["log-format"] {
		c.LogFormat = f.logFormat
	}
	if set["routes"] {
		c.Routes, c.RoutesFile = nil, f.routesFile
	}
	return c, nil
}

// NewLogger returns the slog logger the config asks for, writing to w
// (stderr in a binary).
func (c Config) NewLogger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(c.LogLevel) {
	case "", "info":
		level = slog.LevelInfo
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("logicsvr: log level %q: use debug, info, warn or error", c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.LogFormat) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("logicsvr: log format %q: use text or json", c.LogFormat)
}
