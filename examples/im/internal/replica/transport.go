package replica

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// The raft transport runs on its own TCP port. Every connection starts with
// a hello naming the cluster, which the accepting side checks before raft
// reads a byte: a node configured by mistake with another cluster's peers
// (two groups on one machine, a copied config) is refused, instead of
// voting in, or overwriting the log of, a group it does not belong to.
//
//	helloMagic (10 bytes)  "svrkit-r1\n"
//	byte                   len(cluster id), 1..maxClusterIDLen
//	bytes                  cluster id
//
// A connection may instead start with statusMagic ("svrkit-s1\n") and the
// same cluster id: a status probe, which the leader sends a replica it is
// about to add (see membership.go). The replica answers one JSON line
// (status) and closes; raft never sees the connection.
const (
	helloMagic      = "svrkit-r1\n"
	statusMagic     = "svrkit-s1\n"
	maxClusterIDLen = 200
	helloTimeout    = 5 * time.Second
	maxStatusLen    = 4096
)

// errWrongCluster is what a refused connection's reader sees.
var errWrongCluster = errors.New("replica: connection from another cluster")

func appendHello(dst []byte, cluster string) []byte {
	return appendGreeting(dst, helloMagic, cluster)
}

func appendGreeting(dst []byte, magic, cluster string) []byte {
	dst = append(dst, magic...)
	dst = append(dst, byte(len(cluster)))
	return append(dst, cluster...)
}

// readHello reads a hello and returns the cluster id it names.
func readHello(r io.Reader) (string, error) {
	id, probe, err := readGreeting(r)
	if err == nil && probe {
		err = errors.New("replica: hello: a status probe, not a raft connection")
	}
	return id, err
}

// readGreeting reads a hello or a status probe's greeting and returns the
// cluster id it names, and whether it is a probe.
func readGreeting(r io.Reader) (cluster string, probe bool, err error) {
	var hdr [len(helloMagic) + 1]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", false, fmt.Errorf("replica: hello: %w", err)
	}
	switch string(hdr[:len(helloMagic)]) {
	case helloMagic:
	case statusMagic:
		probe = true
	default:
		return "", false, errors.New("replica: hello: not a svrkit raft connection")
	}
	n := int(hdr[len(helloMagic)])
	if n == 0 || n > maxClusterIDLen {
		return "", false, fmt.Errorf("replica: hello: cluster id of %d bytes", n)
	}
	id := make([]byte, n)
	if _, err := io.ReadFull(r, id); err != nil {
		return "", false, fmt.Errorf("replica: hello: %w", err)
	}
	return string(id), probe, nil
}

// status is what a replica answers a status probe.
type status struct {
	ID      string `json:"id"`      // its replica id
	Applied uint64 `json:"applied"` // the last raft index it applied
	Member  bool   `json:"member"`  // whether it holds a raft configuration (bootstrapped, or added and contacted)
}

// probeStatus asks the replica at addr, as a member of cluster, for its
// status. A replica of another cluster closes the connection unanswered.
func probeStatus(ctx context.Context, addr, cluster string) (status, error) {
	var st status
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return st, err
	}
	defer c.Close()
	deadline := time.Now().Add(helloTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	if _, err := c.Write(appendGreeting(nil, statusMagic, cluster)); err != nil {
		return st, err
	}
	line, err := bufio.NewReaderSize(io.LimitReader(c, maxStatusLen), maxStatusLen).ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return st, fmt.Errorf("it closed the connection without a status (a replica of another cluster, or not a svrkit replica)")
		}
		return st, err
	}
	if err := json.Unmarshal(line, &st); err != nil {
		return st, fmt.Errorf("bad status answer: %w", err)
	}
	return st, nil
}

// streamLayer is raft's TCP stream layer with the cluster hello.
type streamLayer struct {
	ln      net.Listener
	adv     net.Addr
	cluster string
	log     *slog.Logger
	refused func() // counts a refused connection (tests read it)
	// status answers a status probe; nil (before the node is up) answers
	// none.
	status atomic.Pointer[func() status]
}

func newStreamLayer(bind, cluster string, log *slog.Logger, refused func()) (*streamLayer, error) {
	if len(cluster) == 0 || len(cluster) > maxClusterIDLen {
		return nil, fmt.Errorf("replica: cluster id of %d bytes outside [1, %d]", len(cluster), maxClusterIDLen)
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("replica: raft listener: %w", err)
	}
	return &streamLayer{ln: ln, adv: ln.Addr(), cluster: cluster, log: log, refused: refused}, nil
}

// Dial implements raft.StreamLayer: it connects and says which cluster it
// belongs to.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	c.SetWriteDeadline(time.Now().Add(helloTimeout))
	if _, err := c.Write(appendHello(nil, s.cluster)); err != nil {
		c.Close()
		return nil, err
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

// Accept implements net.Listener. The hello is checked on the connection's
// first read, not here, so a peer that connects and says nothing does not
// hold up the accept loop.
func (s *streamLayer) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &helloConn{Conn: c, s: s}, nil
}

func (s *streamLayer) Close() error   { return s.ln.Close() }
func (s *streamLayer) Addr() net.Addr { return s.adv }

// helloConn checks the peer's hello before the first byte reaches raft.
type helloConn struct {
	net.Conn
	s    *streamLayer
	once sync.Once
	err  error
}

func (c *helloConn) Read(p []byte) (int, error) {
	c.once.Do(func() {
		c.Conn.SetReadDeadline(time.Now().Add(helloTimeout))
		id, probe, err := readGreeting(c.Conn)
		c.Conn.SetReadDeadline(time.Time{})
		switch {
		case err != nil:
			c.err = err
		case id == c.s.cluster && probe:
			c.answerStatus()
			c.err = io.EOF // raft closes the connection quietly
			return
		case id != c.s.cluster:
			c.err = errWrongCluster
			c.s.log.Warn("refused a raft connection from another cluster",
				"remote", c.Conn.RemoteAddr().String(), "its_cluster", id, "cluster", c.s.cluster)
		}
		if c.err != nil {
			if c.s.refused != nil {
				c.s.refused()
			}
			c.Conn.Close()
		}
	})
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(p)
}

// answerStatus writes the replica's status line and closes the connection.
func (c *helloConn) answerStatus() {
	defer c.Conn.Close()
	// The listener is up before raft is: a replica still starting answers
	// once it can.
	f := c.s.status.Load()
	for deadline := time.Now().Add(helloTimeout); f == nil && time.Now().Before(deadline); f = c.s.status.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	if f == nil {
		return
	}
	line, _ := json.Marshal((*f)())
	c.Conn.SetWriteDeadline(time.Now().Add(helloTimeout))
	c.Conn.Write(append(line, '\n'))
}
