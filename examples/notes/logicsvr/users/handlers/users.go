// Package handlers implements the users Logicsvr: NewUsers is the
// constructor its generated main calls.
package handlers

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/svrkit/svrkit/examples/notes"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// NewUsers returns the Users handler, keeping users in memory.
func NewUsers(*logicsvr.Host) (notes.UsersServer, error) {
	return &users{byName: map[string]int64{}}, nil
}

type users struct {
	notes.UnimplementedUsersServer
	mu     sync.Mutex
	byName map[string]int64
}

func (u *users) Register(ctx context.Context, req *notes.RegisterRequest) (*notes.User, error) {
	name := strings.TrimSpace(req.GetName())
	if name == "" {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "name is required")
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, taken := u.byName[name]; taken {
		return nil, svrkit.Errorf(svrkit.AlreadyExists, "user %q already exists", name)
	}
	now := time.Now().Unix()
	u.byName[name] = now
	logicsvr.Logger(ctx).Info("user registered", "user", name)
	return &notes.User{Name: name, RegisteredUnix: now, RequestId: logicsvr.RequestID(ctx)}, nil
}

func (u *users) GetUser(ctx context.Context, req *notes.GetUserRequest) (*notes.User, error) {
	u.mu.Lock()
	at, ok := u.byName[req.GetName()]
	u.mu.Unlock()
	if !ok {
		return nil, svrkit.Errorf(svrkit.NotFound, "no user %q", req.GetName())
	}
	return &notes.User{Name: req.GetName(), RegisteredUnix: at, RequestId: logicsvr.RequestID(ctx)}, nil
}
