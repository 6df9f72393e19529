package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/link"
)

// The WebSocket library choice, measured (see the package doc):
// BenchmarkIdleWebSocketMemory holds idleConns authenticated, idle
// WebSocket connections on a server in this process and reports what
// each costs it (Go heap and stacks in use, after a GC), for
//
//   - gobwas-gnet: this package's Server (gobwas/ws on gnet), and
//   - coder-nethttp: the obvious alternative, github.com/coder/websocket on
//     net/http with a goroutine per connection blocked in Read after the
//     same JSON auth exchange.
//
// The clients run in another process (this test binary again, see
// TestMain), so their memory is not counted.
//
//	go test ./examples/im/internal/gateway -run '^$' -bench IdleWebSocketMemory -benchtime 1x -count 3
const idleConns = 2000

// wsClientsEnv makes this test binary a client process: "URL N TOKEN".
const wsClientsEnv = "GATEWAY_WS_CLIENTS"

func TestMain(m *testing.M) {
	if v := os.Getenv(wsClientsEnv); v != "" {
		os.Exit(holdWSClients(v))
	}
	os.Exit(m.Run())
}

func BenchmarkIdleWebSocketMemory(b *testing.B) {
	b.Run("gobwas-gnet", func(b *testing.B) {
		be := newFakeBackend(b)
		s := startGateway(b, Config{IdleTimeout: time.Hour}, be)
		url := "ws://" + s.Addr().String() + link.WebSocketPath
		benchIdle(b, url, be.token(b, 1, "web", time.Hour), func() int { return s.Stats().Authenticated })
	})
	b.Run("coder-nethttp", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		held := make(chan struct{}, idleConns*4)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			ctx := context.Background()
			if _, _, err := c.Read(ctx); err != nil { // the auth
				return
			}
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"response","id":0,"body":{}}`)); err != nil {
				return
			}
			held <- struct{}{}
			defer func() { <-held }()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		})}
		go func() { _ = srv.Serve(ln) }()
		b.Cleanup(func() { _ = srv.Close() })
		benchIdle(b, "ws://"+ln.Addr().String()+link.WebSocketPath, "token", func() int { return len(held) })
	})
}

// benchIdle opens idleConns connections to url from a child process and
// reports the server's memory per connection, measured while they are
// held (held counts them on the server's side).
func benchIdle(b *testing.B, url, token string, held func() int) {
	for range b.N {
		before := inUse()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s", wsClientsEnv, url, idleConns, token))
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "ready\n" {
			b.Fatalf("client process: %q %v", line, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for held() < idleConns {
			if time.Now().After(deadline) {
				b.Fatalf("the server holds %d of %d connections", held(), idleConns)
			}
			time.Sleep(10 * time.Millisecond)
		}
		after := inUse()
		b.ReportMetric(float64(after-before)/idleConns, "B/conn")
		stdin.Close()
		_ = cmd.Wait()
		deadline = time.Now().Add(30 * time.Second)
		for held() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// inUse is the Go heap and stacks in use after a collection.
func inUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}

// holdWSClients is the client process: it opens N WebSocket connections,
// authenticates each in JSON mode, prints "ready" and holds them until its
// stdin closes.
func holdWSClients(arg string) int {
	var url, token string
	var n int
	if _, err := fmt.Sscan(arg, &url, &n, &token); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	signer, _ := session.NewSigner("test secret", session.DefaultTTL)
	var conns []net.Conn
	for i := range n {
		c, _, _, err := ws.Dial(context.Background(), url)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return 1
		}
		tok := token
		if token != "token" { // the gateway: one device per connection
			tok, _, _ = signer.Issue(1, "web-"+strconv.Itoa(i), 0, time.Hour)
		}
		auth, _ := json.Marshal(link.Message{Type: link.TypeAuth, Token: tok})
		if err := wsutil.WriteClientText(c, auth); err != nil {
			fmt.Fprintln(os.Stderr, "auth:", err)
			return 1
		}
		if _, err := wsutil.ReadServerText(c); err != nil {
			fmt.Fprintln(os.Stderr, "auth reply:", err)
			return 1
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	return 0
}
