package rpcbench

import (
	"errors"
	"net"
	"runtime"
	"sync"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
)

// The "ceiling-gnetclient" system answers issue #2's question of which
// transport svrkit's client should run on: it is the ceiling's server
// driven by a client on gnet's client event loops instead of Go's
// netpoller. Everything else matches the ceiling's raw client: the same
// frames, the same number of connections, a request-id map per connection
// and no allocation per call. Callers cannot write to a gnet connection
// themselves, so a caller that finds no write in progress hands the queued
// frames to AsyncWrite and frames queued meanwhile follow in one batch from
// its callback (the svrkit server's write path); responses are parsed on
// the client's event loop, which copies each body to its caller and wakes
// it.

// gnetClient is a multiplexed client on gnet's client event loops.
type gnetClient struct {
	gnet.BuiltinEventEngine

	cli   *gnet.Client
	conns []*gnetConn
	next  uint32 // round-robin cursor, advanced under mu
	mu    sync.Mutex
}

type gnetConn struct {
	c         gnet.Conn
	flushedFn gnet.AsyncCallback

	rawMux
	inWrite []byte // under mu: the batch gnet is writing
}

func dialGnet(addr string, conns int) (*gnetClient, error) {
	conns = max(conns, 1)
	gc := &gnetClient{}
	cli, err := gnet.NewClient(gc,
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(max(1, runtime.NumCPU()/2)),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogLevel(logging.ErrorLevel))
	if err != nil {
		return nil, err
	}
	if err := cli.Start(); err != nil {
		return nil, err
	}
	gc.cli = cli
	for range conns {
		conn := &gnetConn{rawMux: rawMux{pending: make(map[uint32]*rawCall)}}
		conn.flushedFn = conn.flushed
		c, err := cli.DialContext("tcp", addr, conn)
		if err != nil {
			gc.Close()
			return nil, err
		}
		conn.c = c
		gc.conns = append(gc.conns, conn)
	}
	return gc, nil
}

func (gc *gnetClient) pick() ceilingConnection {
	gc.mu.Lock()
	conn := gc.conns[gc.next%uint32(len(gc.conns))]
	gc.next++
	gc.mu.Unlock()
	return conn
}

func (gc *gnetClient) Close() error {
	for _, conn := range gc.conns {
		conn.fail(net.ErrClosed)
	}
	return gc.cli.Stop()
}

// OnTraffic completes the call of every whole response frame buffered.
func (gc *gnetClient) OnTraffic(c gnet.Conn) gnet.Action {
	conn := c.Context().(*gnetConn)
	for {
		f, size, err := peekFrame(c)
		if err != nil {
			return gnet.Close
		}
		if size == 0 {
			return gnet.None
		}
		conn.complete(&f)
		if _, err := c.Discard(size); err != nil {
			return gnet.Close
		}
	}
}

func (gc *gnetClient) OnClose(c gnet.Conn, err error) gnet.Action {
	if conn, ok := c.Context().(*gnetConn); ok {
		conn.fail(errors.Join(net.ErrClosed, err))
	}
	return gnet.None
}

func (conn *gnetConn) call(cl *rawCall, body []byte) error {
	conn.mu.Lock()
	if err := conn.queueLocked(cl, body); err != nil {
		conn.mu.Unlock()
		return err
	}
	if conn.writing {
		conn.mu.Unlock()
	} else {
		conn.startWriteLocked()
	}
	<-cl.done
	return cl.err
}

// startWriteLocked hands the queued frames to AsyncWrite; entered with
// conn.mu held, it releases it.
func (conn *gnetConn) startWriteLocked() {
	batch := conn.queue
	conn.writing = true
	conn.queue, conn.spare, conn.inWrite = conn.spare[:0], nil, batch
	conn.mu.Unlock()
	if err := conn.c.AsyncWrite(batch, conn.flushedFn); err != nil {
		conn.fail(err)
	}
}

// flushed runs on the event loop once a batch is written (or buffered by
// gnet); frames queued meanwhile go out as the next batch.
func (conn *gnetConn) flushed(_ gnet.Conn, err error) error {
	conn.mu.Lock()
	conn.spare = conn.inWrite[:0]
	conn.inWrite = nil
	if err != nil || conn.closed != nil || len(conn.queue) == 0 {
		conn.writing = false
		conn.mu.Unlock()
		return nil
	}
	conn.startWriteLocked()
	return nil
}

func startCeilingGnet(o Options) (System, error) {
	return startCeilingWith(o, func(addr string, conns int) (ceilingClient, error) { return dialGnet(addr, conns) })
}
