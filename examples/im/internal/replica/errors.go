package replica

import (
	"errors"
	"fmt"
)

// Errors of a replica group, on top of package kv's. They are plain Go
// errors; the storage service maps them to svrkit codes.
var (
	// ErrNotLeader: this replica does not serve the call; a
	// *NotLeaderError says which replica does.
	ErrNotLeader = errors.New("replica: not the leader")
	// ErrUnavailable: no leader could be found in time (a majority of the
	// group is down or cut off), or a write's leader lost its leadership
	// before the write committed — its outcome is then unknown.
	ErrUnavailable = errors.New("replica: unavailable")
)

// NotLeaderError names the group's current leader. It matches ErrNotLeader.
type NotLeaderError struct {
	LeaderID  string // the leader's replica id
	LeaderRPC string // its RPC address, where callers should go
}

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("replica: not the leader; the leader is %s at %s", e.LeaderID, e.LeaderRPC)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

func unavailablef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnavailable}, args...)...)
}
