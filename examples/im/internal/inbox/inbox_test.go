package inbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
	"github.com/svrkit/svrkit/examples/im/internal/seq"
	"github.com/svrkit/svrkit/svrkit"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// open opens an Inbox on dir with a small seq step, so tests cross section
// bounds, and closes it at the end of the test.
func open(t testing.TB, dir string, opts Options) (*Inbox, *kv.DB) {
	t.Helper()
	db, err := kv.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if opts.SyncKeySecret == nil {
		opts.SyncKeySecret = []byte("test secret")
	}
	return New(db, seq.New(db, seq.Options{Step: 16}), opts), db
}

// device is a client: it keeps its key and checks what it receives.
type device struct {
	id   string
	user uint64
	key  []byte
	last map[DataType]uint64
	got  []Entry
}

func newDevice(id string, user uint64) *device {
	return &device{id: id, user: user, last: map[DataType]uint64{}}
}

// sync runs one Sync, checks that entries are new and in order, and stores
// them with the new key, as a client does.
func (d *device) sync(t testing.TB, ib *Inbox, limit int) SyncResult {
	t.Helper()
	res, err := ib.Sync(context.Background(), d.user, d.id, d.key, limit)
	if err != nil {
		t.Fatalf("device %s: sync: %v", d.id, err)
	}
	if len(res.Entries) > limit {
		t.Fatalf("device %s: %d entries for limit %d", d.id, len(res.Entries), limit)
	}
	lastType := DataType(0)
	for _, e := range res.Entries {
		if e.Type < lastType {
			t.Fatalf("device %s: %s after %s", d.id, e.Type, lastType)
		}
		lastType = e.Type
		if e.Version <= d.last[e.Type] {
			t.Fatalf("device %s: %s version %d after %d: duplicate or out of order", d.id, e.Type, e.Version, d.last[e.Type])
		}
		d.last[e.Type] = e.Version
		d.got = append(d.got, e)
	}
	d.key = res.Key
	return res
}

// drain syncs until nothing more is pending.
func (d *device) drain(t testing.TB, ib *Inbox, limit int) {
	t.Helper()
	for range 10000 {
		if res := d.sync(t, ib, limit); !res.More {
			return
		}
	}
	t.Fatalf("device %s: sync never finished", d.id)
}

func payloads(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Payload))
	}
	return out
}

func TestDeliverAndSync(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.UnixMilli(1_700_000_000_123)}
	ib, _ := open(t, t.TempDir(), Options{Now: clk.Now})
	const user = 7
	var want []string
	for i := range 25 {
		p := fmt.Sprintf("m%d", i)
		want = append(want, p)
		v, dup, err := ib.Deliver(ctx, user, []byte(p), "c/"+p)
		if err != nil || dup || v != uint64(i+1) {
			t.Fatalf("deliver %d: %d %v %v", i, v, dup, err)
		}
	}
	d := newDevice("phone", user)
	res := d.sync(t, ib, 10)
	if len(res.Entries) != 10 || !res.More || res.Gap {
		t.Fatalf("first page: %d entries more=%v gap=%v", len(res.Entries), res.More, res.Gap)
	}
	if e := res.Entries[0]; e.Type != Messages || !e.DeliveredAt.Equal(clk.Now()) {
		t.Fatalf("entry %+v; want type messages delivered at %v", e, clk.Now())
	}
	// The response is lost: the device syncs again with its old key and
	// gets the same entries with the same versions.
	again, err := ib.Sync(ctx, user, "phone", nil, 10)
	if err != nil || fmt.Sprint(payloads(again.Entries)) != fmt.Sprint(payloads(res.Entries)) {
		t.Fatalf("resync with the old key: %v, %v", payloads(again.Entries), err)
	}
	d.drain(t, ib, 10)
	if fmt.Sprint(payloads(d.got)) != fmt.Sprint(want) {
		t.Fatalf("device got %v", payloads(d.got))
	}
	// Nothing new: empty, same key, no more.
	before := d.key
	if res := d.sync(t, ib, 10); len(res.Entries) != 0 || res.More || string(res.Key) != string(before) {
		t.Fatalf("idle sync: %+v", res)
	}
	// New data arrives and only it comes back.
	ib.Deliver(ctx, user, []byte("late"), "c/late")
	if res := d.sync(t, ib, 10); fmt.Sprint(payloads(res.Entries)) != "[late]" {
		t.Fatalf("after late delivery: %v", payloads(res.Entries))
	}
	// Another user's inbox is separate.
	if res := newDevice("x", user+1).sync(t, ib, 10); len(res.Entries) != 0 {
		t.Fatalf("user %d sees %d entries", user+1, len(res.Entries))
	}
}

func TestDeliverIdempotent(t *testing.T) {
	ctx := context.Background()
	ib, _ := open(t, t.TempDir(), Options{})
	const user = 9
	v1, dup, err := ib.Deliver(ctx, user, []byte("hello"), "alice/1")
	if err != nil || dup {
		t.Fatal(v1, dup, err)
	}
	v2, dup, err := ib.Deliver(ctx, user, []byte("hello (retry)"), "alice/1")
	if err != nil || !dup || v2 != v1 {
		t.Fatalf("retry = %d %v %v; want %d, duplicate", v2, dup, err, v1)
	}
	// Many concurrent retries of a new message: one version, one entry.
	const retries = 16
	versions := make([]uint64, retries)
	dups := make([]bool, retries)
	var wg sync.WaitGroup
	for i := range retries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			versions[i], dups[i], err = ib.Deliver(ctx, user, []byte("storm"), "alice/2")
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	fresh := 0
	for i := range retries {
		if versions[i] != versions[0] {
			t.Fatalf("retries got versions %v", versions)
		}
		if !dups[i] {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d retries were not reported as duplicates, want exactly 1", fresh)
	}
	d := newDevice("phone", user)
	d.drain(t, ib, 100)
	if got := fmt.Sprint(payloads(d.got)); got != "[hello storm]" {
		t.Fatalf("inbox holds %s", got)
	}
	// The same id in another data type is another message.
	if _, dup, err := ib.Publish(ctx, user, Contacts, []byte("c"), "alice/1"); err != nil || dup {
		t.Fatalf("dedup ids leak across data types: duplicate=%v, %v", dup, err)
	}
}

func TestSyncAllTypes(t *testing.T) {
	ctx := context.Background()
	ib, _ := open(t, t.TempDir(), Options{})
	const user = 3
	ib.Deliver(ctx, user, []byte("msg1"), "m1")
	ib.Publish(ctx, user, Contacts, []byte("add bob"), "")
	ib.Publish(ctx, user, Account, []byte("nick"), "")
	ib.Deliver(ctx, user, []byte("msg2"), "m2")
	ib.Publish(ctx, user, Contacts, []byte("add carol"), "")

	d := newDevice("pad", user)
	res := d.sync(t, ib, 2)
	if got := fmt.Sprint(payloads(res.Entries)); got != "[nick add bob]" || !res.More {
		t.Fatalf("page 1 = %s more=%v", got, res.More)
	}
	res = d.sync(t, ib, 2)
	if got := fmt.Sprint(payloads(res.Entries)); got != "[add carol msg1]" || !res.More {
		t.Fatalf("page 2 = %s more=%v", got, res.More)
	}
	res = d.sync(t, ib, 2)
	if got := fmt.Sprint(payloads(res.Entries)); got != "[msg2]" || res.More {
		t.Fatalf("page 3 = %s more=%v", got, res.More)
	}
	k, err := ib.Codec().Decode(user, d.id, d.key)
	if err != nil || k != (SyncKey{}.With(Account, 1).With(Contacts, 2).With(Messages, 2)) {
		t.Fatalf("final key %v, %v", k, err)
	}
	cur, err := ib.CurrentKey(ctx, user, d.id)
	if err != nil || string(cur) != string(d.key) {
		t.Fatalf("CurrentKey = %x, %v; the drained device holds %x", cur, err, d.key)
	}
}

func TestInvalidRequests(t *testing.T) {
	ctx := context.Background()
	ib, _ := open(t, t.TempDir(), Options{})
	const user = 5
	for range 3 {
		ib.Deliver(ctx, user, []byte("x"), fmt.Sprint(time.Now().UnixNano()))
	}
	c := ib.Codec()
	cases := []struct {
		name string
		run  func() error
		kind error
		code svrkit.Code
	}{
		{"future key", func() error {
			_, err := ib.Sync(ctx, user, "d", c.Encode(user, "d", SyncKey{}.With(Messages, 4)), 10)
			return err
		}, ErrFutureSyncKey, svrkit.OutOfRange},
		{"future key, empty type", func() error {
			_, err := ib.Sync(ctx, user, "d", c.Encode(user, "d", SyncKey{}.With(Contacts, 1)), 10)
			return err
		}, ErrFutureSyncKey, svrkit.OutOfRange},
		{"another user's key", func() error {
			_, err := ib.Sync(ctx, user, "d", c.Encode(user+1, "d", SyncKey{}.With(Messages, 1)), 10)
			return err
		}, ErrMalformedSyncKey, svrkit.InvalidArgument},
		{"another device's key", func() error {
			_, err := ib.Sync(ctx, user, "d", c.Encode(user, "e", SyncKey{}.With(Messages, 1)), 10)
			return err
		}, ErrMalformedSyncKey, svrkit.InvalidArgument},
		{"garbage key", func() error {
			_, err := ib.Sync(ctx, user, "d", []byte("garbage-garbage"), 10)
			return err
		}, ErrMalformedSyncKey, svrkit.InvalidArgument},
		{"key with an unserved type", func() error {
			_, err := ib.Sync(ctx, user, "d", c.Encode(user, "d", SyncKey{}.With(9, 1)), 10)
			return err
		}, ErrMalformedSyncKey, svrkit.InvalidArgument},
		{"no device", func() error { _, err := ib.Sync(ctx, user, "", nil, 10); return err }, ErrInvalid, svrkit.InvalidArgument},
		{"long device", func() error {
			_, err := ib.Sync(ctx, user, strings.Repeat("d", MaxDeviceIDLen+1), nil, 10)
			return err
		}, ErrInvalid, svrkit.InvalidArgument},
		{"zero limit", func() error { _, err := ib.Sync(ctx, user, "d", nil, 0); return err }, ErrInvalid, svrkit.InvalidArgument},
		{"huge limit", func() error { _, err := ib.Sync(ctx, user, "d", nil, MaxSyncLimit+1); return err }, ErrInvalid, svrkit.InvalidArgument},
		{"no client msg id", func() error { _, _, err := ib.Deliver(ctx, user, nil, ""); return err }, ErrInvalid, svrkit.InvalidArgument},
		{"big payload", func() error {
			_, _, err := ib.Deliver(ctx, user, make([]byte, MaxPayloadLen+1), "big")
			return err
		}, ErrInvalid, svrkit.InvalidArgument},
		{"long dedup id", func() error {
			_, _, err := ib.Deliver(ctx, user, nil, strings.Repeat("i", MaxDedupIDLen+1))
			return err
		}, ErrInvalid, svrkit.InvalidArgument},
		{"unserved type", func() error { _, _, err := ib.Publish(ctx, user, 9, nil, ""); return err }, ErrInvalid, svrkit.InvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, tc.kind) || svrkit.CodeOf(err) != tc.code {
				t.Fatalf("error %v (code %v); want %v with code %v", err, svrkit.CodeOf(err), tc.kind, tc.code)
			}
		})
	}
	// Rejected syncs registered no device: nothing blocks trimming but the
	// devices that really synced.
	acks, _, err := ib.loadAcks(ctx, user)
	if err != nil || len(acks) != 0 {
		t.Fatalf("rejected syncs left acks %+v, %v", acks, err)
	}
}

// Concurrent senders deliver to one user while two devices sync, each on
// its own key: every device gets every message exactly once, each sender's
// messages in the order sent, with no gaps.
func TestConcurrentDeliverAndSync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ib, _ := open(t, t.TempDir(), Options{})
	const user, senders, perSender = 11, 6, 40

	var sendWG sync.WaitGroup
	for s := range senders {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			for n := range perSender {
				id := fmt.Sprintf("s%d/%d", s, n)
				v, _, err := ib.Deliver(ctx, user, fmt.Appendf(nil, "%d:%d", s, n), id)
				if err != nil {
					t.Error(err)
					return
				}
				if n%4 == 0 { // a client retry racing nothing
					if v2, dup, err := ib.Deliver(ctx, user, nil, id); err != nil || !dup || v2 != v {
						t.Errorf("retry of %s = %d %v %v; want %d", id, v2, dup, err, v)
					}
				}
			}
		}()
	}
	sendersDone := make(chan struct{})
	go func() { sendWG.Wait(); close(sendersDone) }()

	check := func(d *device, limit int) {
		next := make([]int, senders)
		for {
			done := false
			select {
			case <-sendersDone:
				done = true
			case <-ctx.Done():
				t.Errorf("device %s: timed out", d.id)
				return
			default:
			}
			res, err := ib.Sync(ctx, user, d.id, d.key, limit)
			if err != nil {
				t.Errorf("device %s: %v", d.id, err)
				return
			}
			for _, e := range res.Entries {
				if e.Version <= d.last[e.Type] {
					t.Errorf("device %s: version %d after %d", d.id, e.Version, d.last[e.Type])
					return
				}
				d.last[e.Type] = e.Version
				var s, n int
				fmt.Sscanf(string(e.Payload), "%d:%d", &s, &n)
				if n != next[s] {
					t.Errorf("device %s: sender %d message %d, want %d (gap, duplicate or reorder)", d.id, s, n, next[s])
					return
				}
				next[s]++
			}
			d.key = res.Key
			if done && !res.More {
				break
			}
		}
		for s, n := range next {
			if n != perSender {
				t.Errorf("device %s: got %d of sender %d's %d messages", d.id, n, s, perSender)
			}
		}
	}
	var devWG sync.WaitGroup
	for i, limit := range []int{7, 100} {
		devWG.Add(1)
		go func() {
			defer devWG.Done()
			check(newDevice(fmt.Sprint("dev", i), user), limit)
		}()
	}
	devWG.Wait()
}

// Trimming waits for every device's ACK and for the retention window;
// dropped devices stop blocking it and find a Gap when they return.
func TestTrim(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	ib, db := open(t, t.TempDir(), Options{Now: clk.Now, Retention: time.Hour, DeviceTTL: 24 * time.Hour})
	const user = 21
	for i := range 10 {
		ib.Deliver(ctx, user, fmt.Appendf(nil, "m%d", i), fmt.Sprint("m", i))
	}
	trim := func(want int) {
		t.Helper()
		n, err := ib.Trim(ctx, user)
		if err != nil || n != want {
			t.Fatalf("trim = %d, %v; want %d", n, err, want)
		}
	}
	remaining := func() []string {
		t.Helper()
		res, err := db.Scan(ctx, inboxRow(user, Messages), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range res.Entries {
			se, _ := decodeEntry(e.Value)
			out = append(out, string(se.payload))
		}
		return out
	}

	trim(0) // no device has ever synced: keep everything
	clk.Advance(2 * time.Hour)
	phone, laptop := newDevice("phone", user), newDevice("laptop", user)
	phone.drain(t, ib, 100) // registers; its ACK is still the empty key
	laptop.sync(t, ib, 4)
	trim(0)                // neither device has sent a key covering anything yet
	phone.sync(t, ib, 100) // ACKs all 10
	trim(0)                // laptop has ACKed nothing
	laptop.sync(t, ib, 4)  // ACKs 4, receives 5..8
	trim(4)
	if got := fmt.Sprint(remaining()); got != "[m4 m5 m6 m7 m8 m9]" {
		t.Fatalf("after trim: %s", got)
	}
	laptop.sync(t, ib, 4) // ACKs 8, receives 9..10
	trim(4)
	// A new message is younger than the retention window.
	ib.Deliver(ctx, user, []byte("m10"), "m10")
	phone.drain(t, ib, 100)
	laptop.drain(t, ib, 100)
	phone.sync(t, ib, 100)
	laptop.sync(t, ib, 100) // both ACK everything
	trim(2)
	if got := fmt.Sprint(remaining()); got != "[m10]" {
		t.Fatalf("after trim: %s", got)
	}
	// A retry of a young message is still deduplicated; the dedup record of
	// a trimmed one went with it.
	if _, dup, _ := ib.Deliver(ctx, user, nil, "m10"); !dup {
		t.Fatal("retry of a kept message not deduplicated")
	}
	if _, _, err := db.Get(ctx, dedupKey(user, Messages, "m0")); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("dedup record of a trimmed message: %v", err)
	}
	clk.Advance(2 * time.Hour)
	trim(1)
	if got := remaining(); len(got) != 0 {
		t.Fatalf("after trim: %v", got)
	}

	// A new device starts below what was trimmed: Gap, then everything kept.
	ib.Deliver(ctx, user, []byte("m11"), "m11")
	tablet := newDevice("tablet", user)
	if res := tablet.sync(t, ib, 100); !res.Gap || fmt.Sprint(payloads(res.Entries)) != "[m11]" {
		t.Fatalf("new device: gap=%v %v", res.Gap, payloads(res.Entries))
	}
	if res := tablet.sync(t, ib, 100); res.Gap {
		t.Fatal("gap reported twice")
	}

	// The laptop disappears for longer than DeviceTTL while the phone and
	// the tablet keep syncing: the laptop is dropped, trimming goes on.
	clk.Advance(25 * time.Hour)
	phone.sync(t, ib, 100) // receives m11
	phone.sync(t, ib, 100) // ACKs it
	tablet.sync(t, ib, 100)
	trim(1)
	acks, _, _ := ib.loadAcks(ctx, user)
	if len(acks) != 2 || acks[0].device != "phone" || acks[1].device != "tablet" {
		t.Fatalf("devices after expiry: %+v", acks)
	}
	ib.Deliver(ctx, user, []byte("m12"), "m12")
	if res := laptop.sync(t, ib, 100); !res.Gap || fmt.Sprint(payloads(res.Entries)) != "[m12]" {
		t.Fatalf("returning laptop: gap=%v %v", res.Gap, payloads(res.Entries))
	}

	// Logging out every device leaves nobody to ACK: keep everything.
	for _, d := range []string{"phone", "tablet", "laptop", "never-seen"} {
		if err := ib.RemoveDevice(ctx, user, d); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(48 * time.Hour)
	trim(0)
}

func TestMaxDevicesEvictsLeastRecentlySeen(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	ib, _ := open(t, t.TempDir(), Options{Now: clk.Now})
	const user = 4
	for i := range MaxDevices + 1 {
		clk.Advance(time.Hour)
		newDevice(fmt.Sprintf("d%02d", i), user).sync(t, ib, 1)
	}
	acks, _, err := ib.loadAcks(ctx, user)
	if err != nil || len(acks) != MaxDevices {
		t.Fatalf("%d devices, %v", len(acks), err)
	}
	if _, found := findDevice(acks, "d00"); found {
		t.Fatal("the device seen least recently was kept")
	}
	if _, found := findDevice(acks, fmt.Sprintf("d%02d", MaxDevices)); !found {
		t.Fatal("the newest device was not registered")
	}
}

// Close and reopen: keys stay valid, dedup records survive, and versions
// continue above everything handed out.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := kv.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{SyncKeySecret: []byte("s")}
	ib := New(db, seq.New(db, seq.Options{Step: 16}), opts)
	const user = 8
	var last uint64
	for i := range 5 {
		if last, _, err = ib.Deliver(ctx, user, fmt.Appendf(nil, "m%d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	d := newDevice("phone", user)
	d.drain(t, ib, 100)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	ib, _ = open(t, dir, opts)
	if v, dup, err := ib.Deliver(ctx, user, nil, "4"); err != nil || !dup || v != last {
		t.Fatalf("retry after restart: %d %v %v; want %d", v, dup, err, last)
	}
	v, _, err := ib.Deliver(ctx, user, []byte("after"), "after")
	if err != nil || v <= last {
		t.Fatalf("first version after restart %d (%v), before it %d", v, err, last)
	}
	if res := d.sync(t, ib, 100); fmt.Sprint(payloads(res.Entries)) != "[after]" {
		t.Fatalf("after restart: %v", payloads(res.Entries))
	}
}

// Put reports the storing time, and a duplicate reports the first
// delivery's time, not the retry's.
func TestPutReceiptTime(t *testing.T) {
	clk := &clock{now: time.UnixMilli(1_700_000_000_123)}
	ib, _ := open(t, t.TempDir(), Options{Now: clk.Now})
	ctx := context.Background()
	first, err := ib.Put(ctx, 7, Messages, []byte("m"), "a:1")
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !first.At.Equal(clk.Now()) {
		t.Fatalf("first Put = %+v", first)
	}
	clk.Advance(time.Minute)
	again, err := ib.Put(ctx, 7, Messages, []byte("m"), "a:1")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Version != first.Version || !again.At.Equal(first.At) {
		t.Fatalf("retry = %+v, first %+v", again, first)
	}
}

// AckMoved is set exactly when a sync registers the device or advances its
// recorded key.
func TestSyncAckMoved(t *testing.T) {
	ib, _ := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	if _, _, err := ib.Deliver(ctx, 9, []byte("m"), "x"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		key  func(prev []byte) []byte
		want bool
	}{
		{"new device", func([]byte) []byte { return nil }, true},
		{"same empty key", func([]byte) []byte { return nil }, false},
		{"newer key", func(prev []byte) []byte { return prev }, true},
		{"same key again", func(prev []byte) []byte { return prev }, false},
	}
	var key, sent []byte
	for _, st := range steps {
		k := st.key(key)
		if st.name == "same key again" {
			k = sent
		}
		res, err := ib.Sync(ctx, 9, "phone", k, 10)
		if err != nil {
			t.Fatal(err)
		}
		if res.AckMoved != st.want {
			t.Errorf("%s: AckMoved = %v, want %v", st.name, res.AckMoved, st.want)
		}
		sent, key = k, res.Key
	}
}
