// Package handlers implements the sync Logicsvr (idl/im/sync.proto): the
// SyncKey protocol for one device of the caller. NewSync is the constructor
// its generated main calls.
//
// The token (package github.com/svrkit/svrkit/examples/im/internal/session,
// checked against the account's revocations in AccountData) names both the
// user and the device, so a device can only ever read its own user's
// inboxes and advance its own key; the key itself is checked by the
// storage behind MessageData, which sealed it to the user and the device (a
// key of another user or device, edited or damaged, is invalid_argument;
// one from the future out_of_range). Their errors pass through with their
// codes. This Logicsvr keeps no state.
package handlers

import (
	"context"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// The limits of sync.proto.
const (
	DefaultLimit    = 100
	MaxLimit        = 1000
	MaxSyncKeyBytes = 256
)

// NewSync returns the Sync handler. It needs im.MessageData and
// im.AccountData (for session revocations) in the routing table and
// session_secret in the app config.
func NewSync(h *logicsvr.Host) (im.SyncServer, error) {
	signer, err := session.FromApp(h)
	if err != nil {
		return nil, err
	}
	messages, err := h.Client(im.MessageData_ServiceName)
	if err != nil {
		return nil, err
	}
	h.Use(signer.Require(im.Sync_ServiceName))
	return &syncServer{messages: im.NewMessageDataClient(messages)}, nil
}

type syncServer struct {
	im.UnimplementedSyncServer
	messages im.MessageDataClient
}

func (s *syncServer) Sync(ctx context.Context, req *im.SyncRequest) (*im.SyncReply, error) {
	start := time.Now()
	caller := session.From(ctx)
	limit := req.GetLimit()
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "limit must be 1 to %d (got %d)", MaxLimit, limit)
	}
	if n := len(req.GetSyncKey()); n > MaxSyncKeyBytes {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "sync_key must be at most %d bytes (got %d)", MaxSyncKeyBytes, n)
	}
	r, err := s.messages.SyncInbox(ctx, &im.SyncInboxRequest{
		UserId:   caller.UserID,
		DeviceId: caller.DeviceID,
		SyncKey:  req.GetSyncKey(),
		Limit:    limit,
	})
	if err != nil {
		return nil, err
	}
	monitor.Add(im.Monitor_SYNC_CALLS_ID, 1)
	monitor.Add(im.Monitor_SYNC_ITEMS_ID, int64(len(r.GetItems())))
	monitor.Add(im.Monitor_SYNC_LATENCY_MS_ID, time.Since(start).Milliseconds())
	// The receiver's copy of a message is stored before its time is known;
	// its time is the item's (the sender's copy carries the same one).
	for _, it := range r.GetItems() {
		if m := it.GetMessage(); m != nil && m.GetSentUnixMs() == 0 {
			m.SentUnixMs = it.GetAtUnixMs()
		}
	}
	return r, nil
}
