package svrkit

import "sync/atomic"

// padded32 is a counter that every call writes, alone on its cache line:
// beside the fields every call only reads (the endpoints, the options), it
// made each of those reads miss on the other CPU after every call there.
// With a thousand callers the round robin's add was 1.4% of rpcbench's
// process; the line it shared cost the loads around it as much again.
type padded32 struct {
	_ [64]byte
	atomic.Uint32
	_ [60]byte
}

// paddedInt64 is padded32's 64-bit counterpart.
type paddedInt64 struct {
	_ [64]byte
	atomic.Int64
	_ [56]byte
}
