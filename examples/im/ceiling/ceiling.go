// Package ceiling is the in-process ceiling of the IM backend's one-to-one
// message path: the work a delivered message must cost however the
// services are arranged, with nothing else. imload runs it in the same
// invocation as a load on the backend (imload -ceiling) so the backend's
// throughput and CPU per message are read as a fraction of it, on the same
// machine at the same moment.
//
// # What one message costs here
//
// The same store and inbox code the storage Logicsvr runs (packages kv,
// seq, inbox over one pebble store in a fresh directory), with the same
// durability, and per message the same steps the send and sync paths take:
//
//   - the message is encoded as messagedata encodes it (a SyncItem,
//     deterministic protobuf);
//   - inbox.PutPair of the receiver's copy with the dedup id
//     "<sender>:<client_msg_id>" and the sender's own with ":self" (both
//     dedup lookups and version allocations, one fsync'd batch), as the
//     storage Logicsvr does when both users are on one instance;
//   - the receiver's device (and the sender's own, for its copy) is woken
//     as a push would wake it, and syncs: inbox.Sync with its key, which
//     reads the new entries and records the previous key as its ACK, and
//     the items decoded as messagedata decodes them.
//
// The load shape is imload's: users senders, each sending to a random
// other user the next message once the previous is stored (after think),
// and one receiving device per user. What is left out is exactly what the
// backend adds: RPC, HTTP, sessions, the account lookup, the push hops and
// the services' caches — and trimming, which with the default retention of
// seven days deletes nothing during a run.
package ceiling

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/inbox"
	"github.com/svrkit/svrkit/examples/im/internal/kv"
	"github.com/svrkit/svrkit/examples/im/internal/seq"
)

// Config is one ceiling run.
type Config struct {
	Users    int
	Duration time.Duration
	Think    time.Duration // a sender's pause between messages
	// Dir is where the store is made; empty: a temporary directory,
	// removed after the run.
	Dir string
}

// Result is what a run measured.
type Result struct {
	Sent      int64         // messages stored (both copies)
	Delivered int64         // receivers' copies synced by their devices
	Elapsed   time.Duration // of sending
	// CPU is this process's user+system time over the run (sending and
	// draining), which the load generator in it shares.
	CPU time.Duration
}

// PerSec is delivered messages per second of sending.
func (r Result) PerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Delivered) / r.Elapsed.Seconds()
}

// CPUPerMessage is CPU per delivered message.
func (r Result) CPUPerMessage() time.Duration {
	if r.Delivered == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Delivered)
}

// device is one user's receiving device: woken by a push, it syncs on its
// key until it has everything.
type device struct {
	user uint64
	wake chan struct{}
	key  []byte
}

func (d *device) notify() {
	select {
	case d.wake <- struct{}{}:
	default: // already woken: its next sync reads this too
	}
}

// Run runs the ceiling for cfg.Duration, then lets the devices sync what
// was stored.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Users < 2 || cfg.Duration <= 0 {
		return Result{}, fmt.Errorf("ceiling: need at least 2 users and a positive duration")
	}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "imceiling-")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	db, err := kv.Open(dir, nil)
	if err != nil {
		return Result{}, err
	}
	defer db.Close()
	ib := inbox.New(db, seq.New(db, seq.Options{}), inbox.Options{SyncKeySecret: []byte("imload ceiling: any secret will do")})

	devs := make([]*device, cfg.Users)
	for i := range devs {
		d := &device{user: uint64(i + 1), wake: make(chan struct{}, 1)}
		// A device's first sync registers it, as the load's first SyncAll.
		r, err := ib.Sync(ctx, d.user, "tablet", nil, 500)
		if err != nil {
			return Result{}, err
		}
		d.key = r.Key
		devs[i] = d
	}

	var sent, delivered atomic.Int64
	var firstErr atomic.Pointer[error]
	fail := func(err error) { firstErr.CompareAndSwap(nil, &err) }

	cpu0 := processCPU()
	start := time.Now()
	sendCtx, stopSending := context.WithTimeout(ctx, cfg.Duration)
	defer stopSending()
	syncCtx, stopSyncing := context.WithCancel(ctx)
	defer stopSyncing()

	var receivers sync.WaitGroup
	for _, d := range devs {
		receivers.Add(1)
		go func() {
			defer receivers.Done()
			for {
				select {
				case <-syncCtx.Done():
					return
				case <-d.wake:
				}
				for {
					r, err := ib.Sync(ctx, d.user, "tablet", d.key, 500)
					if err != nil {
						fail(err)
						return
					}
					for _, e := range r.Entries {
						var item im.SyncItem
						if err := proto.Unmarshal(e.Payload, &item); err != nil {
							fail(err)
							return
						}
						if item.GetMessage().GetFromUserId() != d.user {
							delivered.Add(1)
						}
					}
					d.key = r.Key
					if !r.More {
						break
					}
				}
			}
		}()
	}

	var senders sync.WaitGroup
	for i, d := range devs {
		senders.Add(1)
		go func() {
			defer senders.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			for n := 0; sendCtx.Err() == nil; n++ {
				to := devs[(i+1+rng.IntN(len(devs)-1))%len(devs)]
				m := &im.Message{
					FromUserId:  d.user,
					ToUserId:    to.user,
					ClientMsgId: strconv.FormatInt(start.UnixNano(), 10) + "-" + strconv.Itoa(i) + "-" + strconv.Itoa(n),
					Type:        im.MessageType_MESSAGE_TYPE_TEXT,
					Text:        "L|" + strconv.FormatInt(time.Now().UnixNano(), 10),
				}
				dedup := strconv.FormatUint(d.user, 10) + ":" + m.GetClientMsgId()
				theirs, mine, err := ib.PutPair(ctx, to.user, d.user, inbox.Messages, encode(m), dedup, dedup+":self")
				if err != nil {
					fail(err)
					return
				}
				if mine == nil { // only on a retry, which this load never makes
					own := proto.CloneOf(m)
					own.SentUnixMs = theirs.At.UnixMilli()
					if _, err := ib.Put(ctx, d.user, inbox.Messages, encode(own), dedup+":self"); err != nil {
						fail(err)
						return
					}
				}
				to.notify()
				d.notify()
				sent.Add(1)
				if cfg.Think > 0 {
					select {
					case <-sendCtx.Done():
					case <-time.After(cfg.Think):
					}
				}
			}
		}()
	}
	senders.Wait()
	elapsed := time.Since(start)
	// Let the devices catch up, as imload's drain does.
	deadline := time.Now().Add(10 * time.Second)
	for delivered.Load() < sent.Load() && time.Now().Before(deadline) && firstErr.Load() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stopSyncing()
	receivers.Wait()
	res := Result{Sent: sent.Load(), Delivered: delivered.Load(), Elapsed: elapsed, CPU: processCPU() - cpu0}
	if err := firstErr.Load(); err != nil {
		return res, fmt.Errorf("ceiling: %w", *err)
	}
	if res.Delivered != res.Sent {
		return res, fmt.Errorf("ceiling: %d messages stored, %d synced", res.Sent, res.Delivered)
	}
	return res, nil
}

// encode is messagedata's encoding of a message as an inbox payload.
func encode(m *im.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&im.SyncItem{
		Type: im.SyncType_SYNC_TYPE_MESSAGES,
		Item: &im.SyncItem_Message{Message: m},
	})
	if err != nil {
		panic(err) // a Message always encodes
	}
	return b
}

// processCPU is this process's user+system time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
