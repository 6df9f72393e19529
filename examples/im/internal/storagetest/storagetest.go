// Package storagetest runs the IM backend's storage layer — the storage,
// accountdata, contactdata and messagedata Logicsvrs — inside a test
// process, each a real logicsvr.Host serving svrkit RPC on its own loopback
// port, with the storage Logicsvr's pebble store in a directory the test
// gives. Tests of the storage layer use it, and so can tests of the
// Logicsvrs above it: they get a routing table to put in their own hosts'
// configs.
//
// Nothing is mocked: calls go through the generated clients, the svrkit
// client and server, the hosts' interceptors and the store on disk. Ports
// are fixed when the cluster starts, so a host restarted on the same
// directory (RestartStorage) is found at the same address.
package storagetest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	accountdata "github.com/svrkit/svrkit/examples/im/logicsvr/accountdata/handlers"
	contactdata "github.com/svrkit/svrkit/examples/im/logicsvr/contactdata/handlers"
	messagedata "github.com/svrkit/svrkit/examples/im/logicsvr/messagedata/handlers"
	storage "github.com/svrkit/svrkit/examples/im/logicsvr/storage/handlers"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// SyncKeySecret is the storage Logicsvr's secret in a Cluster.
const SyncKeySecret = "storagetest secret"

// The Logicsvrs of a Cluster, in start order.
var names = []string{"storage", "messagedata", "accountdata", "contactdata"}

// Cluster is a running storage layer.
type Cluster struct {
	// Routes is the routing table of the four services, for the configs of
	// hosts that call them.
	Routes map[string][]string
	// Dir is the storage Logicsvr's data directory.
	Dir string

	addrs  map[string]string
	hosts  map[string]*logicsvr.Host
	client *logicsvr.Host
	app    map[string]json.RawMessage
	log    *slog.Logger
}

// Options adjust a Cluster.
type Options struct {
	// App overrides a Logicsvr's "app" config, by Logicsvr name.
	App map[string]any
	// Logger receives the hosts' logs (default: discarded).
	Logger *slog.Logger
}

// Start runs the four Logicsvrs with the store in dir and stops them when
// the test ends.
func Start(t testing.TB, dir string, opts *Options) *Cluster {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	c := &Cluster{
		Routes: map[string][]string{},
		Dir:    dir,
		addrs:  map[string]string{},
		hosts:  map[string]*logicsvr.Host{},
		app:    map[string]json.RawMessage{},
		log:    opts.Logger,
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	app := map[string]any{"storage": map[string]any{"dir": dir, "sync_key_secret": SyncKeySecret}}
	for k, v := range opts.App {
		app[k] = v
	}
	for name, v := range app {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		c.app[name] = raw
	}
	services := map[string]string{
		"storage":     im.Storage_ServiceName,
		"messagedata": im.MessageData_ServiceName,
		"accountdata": im.AccountData_ServiceName,
		"contactdata": im.ContactData_ServiceName,
	}
	// Each service binds a port the kernel picks, and the ones started after
	// it route to it: every service calls only those before it in names.
	// (Picking free ports first and binding them later raced with the
	// other processes of a busy machine.) A restart rebinds the same port.
	t.Cleanup(func() { c.stopAll() })
	for _, name := range names {
		c.start(t, name)
		c.Routes[services[name]] = []string{c.addrs[name]}
	}
	var err error
	c.client, err = logicsvr.New(logicsvr.Config{Name: "storagetest", HTTP: logicsvr.Off, RPC: logicsvr.Off,
		Routes: c.Routes}, logicsvr.WithLogger(c.log))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *Cluster) start(t testing.TB, name string) {
	t.Helper()
	addr := c.addrs[name]
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	h, err := logicsvr.New(logicsvr.Config{
		Name:         name,
		HTTP:         logicsvr.Off,
		RPC:          addr,
		Admin:        "127.0.0.1:0",
		Routes:       maps.Clone(c.Routes),
		App:          c.app[name],
		DrainTimeout: logicsvr.Duration(5 * time.Second),
		Dev:          true, // SyncKeySecret is a test's, short and public
	}, logicsvr.WithLogger(c.log.With("logicsvr", name)))
	if err != nil {
		t.Fatal(err)
	}
	switch name {
	case "storage":
		impl, err := storage.NewStorage(h)
		if err != nil {
			t.Fatal(err)
		}
		im.RegisterStorageServer(h, impl)
	case "messagedata":
		impl, err := messagedata.NewMessageData(h)
		if err != nil {
			t.Fatal(err)
		}
		im.RegisterMessageDataServer(h, impl)
	case "accountdata":
		impl, err := accountdata.NewAccountData(h)
		if err != nil {
			t.Fatal(err)
		}
		im.RegisterAccountDataServer(h, impl)
	case "contactdata":
		impl, err := contactdata.NewContactData(h)
		if err != nil {
			t.Fatal(err)
		}
		im.RegisterContactDataServer(h, impl)
	}
	if err := h.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	c.addrs[name] = h.RPCAddr().String()
	c.hosts[name] = h
}

func (c *Cluster) stop(name string) error {
	h := c.hosts[name]
	if h == nil {
		return nil
	}
	delete(c.hosts, name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.Shutdown(ctx)
}

func (c *Cluster) stopAll() {
	if c.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.client.Shutdown(ctx)
		cancel()
	}
	for i := len(names) - 1; i >= 0; i-- {
		c.stop(names[i])
	}
}

// RestartStorage shuts the storage Logicsvr down cleanly and starts it
// again on the same directory and port.
func (c *Cluster) RestartStorage(t testing.TB) {
	t.Helper()
	if err := c.stop("storage"); err != nil {
		t.Fatalf("stop storage: %v", err)
	}
	c.start(t, "storage")
}

func (c *Cluster) invoker(t testing.TB, service string) svrkit.Invoker {
	t.Helper()
	inv, err := c.client.Client(service)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// Storage, AccountData, ContactData and MessageData return clients over the
// cluster's routing table.
func (c *Cluster) Storage(t testing.TB) im.StorageClient {
	return im.NewStorageClient(c.invoker(t, im.Storage_ServiceName))
}

func (c *Cluster) AccountData(t testing.TB) im.AccountDataClient {
	return im.NewAccountDataClient(c.invoker(t, im.AccountData_ServiceName))
}

func (c *Cluster) ContactData(t testing.TB) im.ContactDataClient {
	return im.NewContactDataClient(c.invoker(t, im.ContactData_ServiceName))
}

func (c *Cluster) MessageData(t testing.TB) im.MessageDataClient {
	return im.NewMessageDataClient(c.invoker(t, im.MessageData_ServiceName))
}
