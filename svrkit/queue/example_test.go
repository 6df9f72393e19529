package queue_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/svrkit/svrkit/svrkit/queue"
	"github.com/svrkit/svrkit/svrkit/queue/embedded"
)

// A service publishes work for after its reply; a worker handles it, in
// order per key. Here both run against an embedded server; in production
// the queuesvr service (or a NATS cluster) is the server and Config.URLs
// points at it.
func Example() {
	dir, _ := os.MkdirTemp("", "queue-example")
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srv, err := embedded.Start(ctx, embedded.Config{Dir: filepath.Join(dir, "queue"), Listen: "127.0.0.1:0", Token: "s3cret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown()

	q, err := queue.Open(ctx, queue.Config{URLs: []string{srv.URL()}, Token: "s3cret", Stream: "FANOUT"},
		queue.WithAckWait(10*time.Second), queue.WithMaxDeliver(5))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()

	// The sending service: Publish returns once the item is stored.
	for _, text := range []string{"hello", "how are you?", "bye"} {
		if _, err := q.Publish(ctx, "group-42", []byte(text)); err != nil {
			fmt.Println(err)
			return
		}
	}

	// The worker: items of group-42 arrive one at a time, in order.
	done := make(chan struct{})
	n := 0
	k, err := q.Consume(ctx, func(ctx context.Context, m *queue.Message) error {
		fmt.Printf("%s: %s\n", m.Key(), m.Payload())
		if n++; n == 3 {
			close(done)
		}
		return nil // acknowledged; an error would have it delivered again later
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	<-done
	_ = k.Stop(ctx)
	// Output:
	// group-42: hello
	// group-42: how are you?
	// group-42: bye
}

// A publisher that retries after a failure, or after restarting, passes
// the same id each time: the queue stores the item once.
func ExampleClient_PublishWithID() {
	var q *queue.Client // opened with queue.Open
	publish := func(ctx context.Context, clientMsgID, groupID string, payload []byte) error {
		for {
			r, err := q.PublishWithID(ctx, "fanout-"+clientMsgID, groupID, payload)
			if err == nil {
				if r.Duplicate {
					fmt.Println("an earlier attempt had stored it")
				}
				return nil
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	_ = publish
}

// A monitoring loop reads the lag on a period.
func ExampleClient_Lag() {
	var q *queue.Client // opened with queue.Open
	report := func(ctx context.Context) {
		lag, err := q.Lag(ctx)
		if err != nil {
			fmt.Println("lag:", err)
			return
		}
		fmt.Printf("backlog %d, in flight %d, oldest %v, dead letters %d\n",
			lag.Backlog, lag.InFlight, lag.OldestAge.Round(time.Millisecond), lag.DeadLetters)
	}
	_ = report
}
