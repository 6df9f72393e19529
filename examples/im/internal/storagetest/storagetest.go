// Package storagetest runs the IM backend's storage layer — the storage,
// accountdata, contactdata and messagedata Logicsvrs, and groupdata when
// the test gives it a queue — inside a test process, each a real logicsvr.Host serving svrkit RPC on its own loopback
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
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/replica"
	"github.com/svrkit/svrkit/examples/im/internal/testport"
	accountdata "github.com/svrkit/svrkit/examples/im/logicsvr/accountdata/handlers"
	contactdata "github.com/svrkit/svrkit/examples/im/logicsvr/contactdata/handlers"
	groupdata "github.com/svrkit/svrkit/examples/im/logicsvr/groupdata/handlers"
	messagedata "github.com/svrkit/svrkit/examples/im/logicsvr/messagedata/handlers"
	storage "github.com/svrkit/svrkit/examples/im/logicsvr/storage/handlers"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// SyncKeySecret is the storage Logicsvr's secret in a Cluster.
const SyncKeySecret = "storagetest secret"

// The Logicsvrs of a Cluster, in start order (groupdata only with a
// queue).
var names = []string{"storage", "messagedata", "accountdata", "contactdata", "groupdata"}

// Cluster is a running storage layer.
type Cluster struct {
	// Routes is the routing table of the four services, for the configs of
	// hosts that call them.
	Routes map[string][]string
	// Dir is the storage Logicsvr's data directory.
	Dir string

	group  []string // the storage replicas' instance names, if a group
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
	// Queue, when set, runs groupdata too, publishing to this queue: the
	// "queue" object of its app config (package
	// examples/im/internal/groups' QueueConfig).
	Queue any
	// Replicas, above 1, runs the storage Logicsvr as a Raft group of that
	// many replicas (instances "storage-1"...), each with its directory
	// under dir, all in the routing table; callers find the leader through
	// svrkit's redirects. The default is one plain store.
	Replicas int
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
	if opts.Queue != nil {
		app["groupdata"] = map[string]any{"queue": opts.Queue}
	}
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
	if opts.Replicas > 1 {
		c.startGroup(t, opts.Replicas)
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
		if name == "storage" && c.group != nil {
			continue // started above
		}
		if name == "groupdata" {
			if opts.Queue == nil {
				continue
			}
			c.start(t, name)
			c.Routes[im.GroupData_ServiceName] = []string{c.addrs[name]}
			c.Routes[im.UserGroups_ServiceName] = []string{c.addrs[name]}
			continue
		}
		c.start(t, name)
		c.Routes[services[name]] = []string{c.addrs[name]}
	}
	var err error
	c.client, err = logicsvr.New(logicsvr.Config{Name: "storagetest", HTTP: logicsvr.Off, RPC: logicsvr.Off,
		Routes: c.Routes}, logicsvr.WithLogger(c.log),
		logicsvr.WithClientOptions(svrkit.WithClientInterceptors(RetryOverloaded)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// RetryOverloaded retries a call the services refused as overloaded, as a
// real client does, until the call's context ends; the cluster's clients
// use it, and so may a test's own. A test's burst of
// concurrent writes can push a loaded machine's storage past its
// queuing-time threshold; for the short while after it the clients refuse
// low-priority calls such as a sync without sending them. The tests here
// check what the storage layer stores, not when it sheds, and an overload
// refusal never ran the call, so trying again is safe.
func RetryOverloaded(ctx context.Context, m *svrkit.MethodDesc, req, resp proto.Message, next svrkit.UnaryInvoker) error {
	wait := 20 * time.Millisecond
	for {
		err := next(ctx, m, req, resp)
		if svrkit.CodeOf(err) != svrkit.Overloaded {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

func (c *Cluster) start(t testing.TB, name string) {
	t.Helper()
	if err := c.tryStart(name); err != nil {
		t.Fatal(err)
	}
}

// tryStart starts the Logicsvr name and records its address.
func (c *Cluster) tryStart(name string) error {
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
		return err
	}
	switch strings.TrimRight(name, "-0123456789") {
	case "storage":
		impl, err := storage.NewStorage(h)
		if err != nil {
			return err
		}
		im.RegisterStorageServer(h, impl)
	case "messagedata":
		impl, err := messagedata.NewMessageData(h)
		if err != nil {
			return err
		}
		im.RegisterMessageDataServer(h, impl)
	case "accountdata":
		impl, err := accountdata.NewAccountData(h)
		if err != nil {
			return err
		}
		im.RegisterAccountDataServer(h, impl)
	case "contactdata":
		impl, err := contactdata.NewContactData(h)
		if err != nil {
			return err
		}
		im.RegisterContactDataServer(h, impl)
	case "groupdata":
		impl, err := groupdata.NewGroupData(h)
		if err != nil {
			return err
		}
		im.RegisterGroupDataServer(h, impl)
		index, err := groupdata.NewUserGroups(h)
		if err != nil {
			return err
		}
		im.RegisterUserGroupsServer(h, index)
	}
	if err := h.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.addrs[name] = h.RPCAddr().String()
	c.hosts[name] = h
	return nil
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
	for _, name := range c.group {
		c.stop(name)
	}
}

// startGroup starts the storage replicas. Their RPC and raft ports are
// picked before they bind, as every replica's config names all of them; a
// port another process takes meanwhile fails the start, which is retried
// on new ports.
func (c *Cluster) startGroup(t testing.TB, n int) {
	t.Helper()
	t.Cleanup(func() { c.stopAll() })
	var err error
	for attempt := range 5 {
		if err = c.tryGroup(t, n, attempt); err == nil {
			return
		}
		for _, name := range c.group {
			c.stop(name)
		}
		c.group = nil
	}
	t.Fatal(err)
}

// tryGroup starts a group with its directories under c.Dir/attempt: a
// replica whose host failed to start keeps its store open until the test
// process exits (logicsvr runs shutdown hooks only for a started host).
func (c *Cluster) tryGroup(t testing.TB, n, attempt int) error {
	t.Helper()
	var peers []replica.Peer
	for i := range n {
		peers = append(peers, replica.Peer{ID: fmt.Sprintf("storage-%d", i+1), RPC: testport.Addr(t), Raft: testport.Addr(t)})
	}
	var rpcs []string
	for _, p := range peers {
		raw, err := json.Marshal(map[string]any{
			"dir": filepath.Join(c.Dir, fmt.Sprint(attempt), p.ID), "sync_key_secret": SyncKeySecret,
			"replica": map[string]any{"id": p.ID, "cluster": "storagetest", "peers": peers,
				"heartbeat_timeout": "500ms", "election_timeout": "500ms"},
		})
		if err != nil {
			t.Fatal(err)
		}
		c.app[p.ID], c.addrs[p.ID] = raw, p.RPC
		c.group = append(c.group, p.ID)
		rpcs = append(rpcs, p.RPC)
	}
	for _, p := range peers {
		if err := c.tryStart(p.ID); err != nil {
			return err
		}
	}
	c.Routes[im.Storage_ServiceName] = rpcs
	return nil
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

// GroupData and UserGroups are clients of groupdata (started only with
// Options.Queue).
func (c *Cluster) GroupData(t testing.TB) im.GroupDataClient {
	return im.NewGroupDataClient(c.invoker(t, im.GroupData_ServiceName))
}

func (c *Cluster) UserGroups(t testing.TB) im.UserGroupsClient {
	return im.NewUserGroupsClient(c.invoker(t, im.UserGroups_ServiceName))
}
