package svrkit

import "sync/atomic"

// padded32 is a counter that every call writes, alone on its cache line.
// Beside fields that every call only reads (a client's endpoints and
// options, a server's draining flag and clock), each write from one CPU
// made those reads miss on the other: the counter's own cost was small,
// the loads around it paid for it (tools/rpcbench, many callers; figures
// in the README).
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
