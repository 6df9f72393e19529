package handlers

import (
	"context"
	"errors"
	"sync"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/replica"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// opened maps a host to the Server NewStorage opened on it, for
// NewStorageAdmin: the two services of the Logicsvr share one store, and
// the generated main constructs them one after the other (Storage first,
// in the IDL's order).
var opened sync.Map // *logicsvr.Host -> *Server

// NewStorageAdmin returns the StorageAdmin handler over the replica group
// NewStorage opened on h (call NewStorage first). On a single store every
// method answers failed_precondition.
func NewStorageAdmin(h *logicsvr.Host) (im.StorageAdminServer, error) {
	if h.InfoOnly() {
		return &Admin{}, nil
	}
	v, ok := opened.Load(h)
	if !ok {
		return nil, errors.New("storage admin: the Storage service is not open on this host (NewStorage comes first)")
	}
	return &Admin{node: v.(*Server).node}, nil
}

// Admin is the StorageAdmin handler: membership changes of the replica
// group this instance belongs to (package examples/im/internal/replica
// documents how each works). Its errors get their codes from the same
// statusInterceptor as Storage's: a follower's answer is a redirect to
// the leader.
type Admin struct {
	im.UnimplementedStorageAdminServer
	node *replica.Node
}

func (a *Admin) group() (*replica.Node, error) {
	if a.node == nil {
		return nil, svrkit.NewError(svrkit.FailedPrecondition, "this storage instance is a single store, not a replica group (its app config has no \"replica\")")
	}
	return a.node, nil
}

func (a *Admin) members(ctx context.Context) ([]*im.Replica, error) {
	ms, err := a.node.Members(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*im.Replica, len(ms))
	for i, m := range ms {
		out[i] = &im.Replica{Id: m.ID, Rpc: m.RPC, Raft: m.Raft, Voter: m.Voter, Leader: m.Leader}
	}
	return out, nil
}

// ListReplicas implements im.StorageAdminServer.
func (a *Admin) ListReplicas(ctx context.Context, _ *im.ListReplicasRequest) (*im.ListReplicasReply, error) {
	if _, err := a.group(); err != nil {
		return nil, err
	}
	rs, err := a.members(ctx)
	if err != nil {
		return nil, err
	}
	return &im.ListReplicasReply{Replicas: rs}, nil
}

// AddReplica implements im.StorageAdminServer.
func (a *Admin) AddReplica(ctx context.Context, req *im.AddReplicaRequest) (*im.AddReplicaReply, error) {
	n, err := a.group()
	if err != nil {
		return nil, err
	}
	if err := n.AddReplica(ctx, replica.Peer{ID: req.GetId(), RPC: req.GetRpc(), Raft: req.GetRaft()}); err != nil {
		return nil, err
	}
	rs, err := a.members(ctx)
	if err != nil {
		return nil, err
	}
	return &im.AddReplicaReply{Replicas: rs}, nil
}

// RemoveReplica implements im.StorageAdminServer.
func (a *Admin) RemoveReplica(ctx context.Context, req *im.RemoveReplicaRequest) (*im.RemoveReplicaReply, error) {
	n, err := a.group()
	if err != nil {
		return nil, err
	}
	if err := n.RemoveReplica(ctx, req.GetId()); err != nil {
		return nil, err
	}
	rs, err := a.members(ctx)
	if err != nil {
		return nil, err
	}
	return &im.RemoveReplicaReply{Replicas: rs}, nil
}
