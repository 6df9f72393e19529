package replica

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/svrkit/svrkit/examples/im/internal/kv"
)

// fsm is raft's state machine: the committed batches, applied in log order
// to the replica's kv.DB with ApplyCommitted (deterministic, and skipping
// entries the DB already holds after a restart).
type fsm struct {
	db *kv.DB
	// applied is the raft index of the last entry this FSM processed (a
	// batch, a leadership marker or a configuration); reads wait on it.
	applied atomic.Uint64

	mu      sync.Mutex
	waiters []waiter
}

type waiter struct {
	index uint64
	ch    chan struct{}
}

// result is what a batch's ApplyFuture.Response holds.
type result struct {
	versions []uint64
	err      error
}

// markerCommand is the empty command a new leader commits before it serves
// (see Node.lead): it changes nothing.
var markerCommand = []byte{0}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	defer f.advance(l.Index)
	if len(l.Data) == 1 && l.Data[0] == markerCommand[0] {
		return result{}
	}
	b, err := kv.DecodeBatch(l.Data)
	if err != nil {
		// Every replica decodes the same bytes the same way, so every
		// replica skips the entry alike.
		return result{err: err}
	}
	vs, err := f.db.ApplyCommitted(b, l.Index)
	if err != nil && !isOutcome(err) {
		// The disk failed under a committed entry. Going on would leave
		// this replica without it while later entries apply: it stops
		// instead, and on restart replays the log from its DB's applied
		// index.
		panic(fmt.Sprintf("replica: cannot apply committed entry %d: %v", l.Index, err))
	}
	return result{versions: vs, err: err}
}

// isOutcome reports whether err is a batch's own result (a failed
// condition, a bad request), the same on every replica.
func isOutcome(err error) bool {
	return errors.Is(err, kv.ErrConflict) || errors.Is(err, kv.ErrInvalid) || errors.Is(err, kv.ErrCorrupt)
}

// StoreConfiguration implements raft.ConfigurationStore, so configuration
// entries move applied too (a read may wait on one).
func (f *fsm) StoreConfiguration(index uint64, _ raft.Configuration) { f.advance(index) }

func (f *fsm) advance(index uint64) {
	if index <= f.applied.Load() {
		return
	}
	f.applied.Store(index)
	f.mu.Lock()
	keep := f.waiters[:0]
	for _, w := range f.waiters {
		if w.index <= index {
			close(w.ch)
		} else {
			keep = append(keep, w)
		}
	}
	f.waiters = keep
	f.mu.Unlock()
}

// wait returns a channel closed once entry index is applied.
func (f *fsm) wait(index uint64) <-chan struct{} {
	ch := make(chan struct{})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applied.Load() >= index {
		close(ch)
		return ch
	}
	f.waiters = append(f.waiters, waiter{index, ch})
	return ch
}

// Snapshot implements raft.FSM. The DB's applies are not fsync'd (the log
// holds them); raft may drop the log up to this snapshot's index once it is
// persisted, so the applies become durable first.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.db.SyncApplied(); err != nil {
		return nil, err
	}
	return &fsmSnapshot{snap: f.db.Snapshot()}, nil
}

// Restore implements raft.FSM: the DB's contents are replaced by the
// snapshot's (a replica too far behind for the log, or with an empty DB).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	idx, err := f.db.Restore(rc)
	if err != nil {
		return err
	}
	if idx > f.applied.Load() {
		f.advance(idx)
	}
	return nil
}

type fsmSnapshot struct{ snap *kv.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.snap.Release() }
