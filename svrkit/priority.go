package svrkit

import (
	"context"
	"math/rand/v2"
	"time"
)

// Request priorities, after DAGOR (WeChat's overload control).
//
// Every request carries two priorities. Its business priority says how
// much the request matters (a login or a message send more than a profile
// read): the IDL's method priority, or — for a call made while handling
// another — the entry request's, inherited along the whole call chain, so
// that the downstream calls of an important request stay important. Its
// user priority (1–127) is a hash of the user the request is for, with a
// salt that changes every hour: under overload a server sheds whole users
// rather than random requests, so the calls behind one user action are
// admitted or shed together and each admitted user gets a working service,
// and which users are shed rotates. The entry service names the user
// (WithEntryPriority); otherwise a call routed by key (the user id, for
// storage) uses its routing key, and a call with neither gets a random user
// priority, which sheds a random fraction.
//
// Admission compares the pair as one key, business first: key =
// business<<7 | user. A business priority of 0 means unset and counts as
// DefaultPriority.

// DefaultPriority is the business priority of requests whose method
// declares none: the middle, so that declared low priorities are shed
// before them and declared high ones after.
const DefaultPriority = 128

// callPriority is what a call chain inherits: the entry request's business
// priority (0 = unset) and user priority (0 = unset).
type callPriority struct {
	business, user uint8
	// worker, in a pooled server call's priorities, is that call: the
	// client tells it when the handler's calls go out and come back, so
	// that the pool knows its worker waits (workers.go), and feeds the
	// levels the callees report to its method's record (downLevel).
	worker *callCtx
}

// downLevel is, in a server call's priorities, its method's record of the
// levels the services it calls report (downstream.go), or nil: the call
// is not pooled or the server runs no overload control.
func (p *callPriority) downLevel() *downstreamLevel {
	if p.worker == nil || p.worker.conn.s.adm == nil {
		return nil
	}
	return &p.worker.sm.down
}

type priorityKey struct{}

// WithEntryPriority returns ctx whose outgoing calls carry business
// priority business (0 keeps each method's own) and the user priority of
// userKey (e.g. the user id; "" keeps the routing key's or a random one).
// An entry service — an HTTP CGI, a gateway — sets it once per user
// request, so that every call behind the request is admitted or shed
// together. Calls made while handling an svrkit call inherit that call's
// priorities without it.
//
// Either half may be set on its own: a zero business priority or an empty
// user key keeps what ctx already carries, so a CGI front can set the
// method's business priority and an authentication interceptor the user.
func WithEntryPriority(ctx context.Context, business uint8, userKey string) context.Context {
	p := &callPriority{business: business}
	if userKey != "" {
		p.user = userPriority(userKey)
	}
	if prev, ok := ctx.Value(priorityKey{}).(*callPriority); ok {
		if p.business == 0 {
			p.business = prev.business
		}
		if p.user == 0 {
			p.user = prev.user
		}
		p.worker = prev.worker
	}
	return context.WithValue(ctx, priorityKey{}, p)
}

// requestPriority returns the business and user priority of an outgoing
// call of m: the call option's, else the inherited ones, else the
// method's; the user priority falls back to the routing key's, then to a
// random one.
//
// down is where the call's answer should report the callee's level: the
// calling handler's method's record, when the call is made while serving
// one.
func requestPriority(ctx context.Context, m *MethodDesc, co *callOptions, key string, hasKey bool) (business, user uint8, down *downstreamLevel, worker *callCtx) {
	business = m.Priority
	if p, ok := ctx.Value(priorityKey{}).(*callPriority); ok {
		if p.business != 0 {
			business = p.business
		}
		user = p.user
		down, worker = p.downLevel(), p.worker
	}
	if co != nil && co.priority != 0 {
		business = co.priority
	}
	if user == 0 {
		if hasKey {
			user = userPriority(key)
		} else {
			user = 1 + uint8(rand.Uint32()%127)
		}
	}
	return business, user, down, worker
}

// admissionKey combines a request's priorities; unset ones get their
// defaults (a user priority from the request id and the hour's salt, for
// peers that send none). The server passes the salt of its coarse clock
// (Server.salt): reading the clock per request costs more than the rest of
// admission on a VM.
func admissionKey(business, user uint8, reqID uint32, salt uint64) uint16 {
	if business == 0 {
		business = DefaultPriority
	}
	user &= 0x7f
	if user == 0 {
		user = 1 + uint8(mix64(uint64(reqID)^salt)%127)
	}
	return uint16(business)<<7 | uint16(user)
}

// userPriority hashes a user key into 1–127 with the hour's salt.
func userPriority(key string) uint8 {
	return 1 + uint8(mix64(hashString(key)^hourSalt(time.Now().UnixNano()))%127)
}

// hourSalt is the salt of the hour at now (unix nanos). It changes every
// hour, the same in every process, so that every service ranks a user
// alike within the hour and the ranking rotates.
func hourSalt(now int64) uint64 {
	return mix64(uint64(now/int64(time.Hour)) ^ 0x5bd1e9955bd1e995)
}
