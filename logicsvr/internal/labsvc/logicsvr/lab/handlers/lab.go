// Package handlers implements the lab Logicsvr's one service. NewLab is the
// constructor the generated main calls.
package handlers

import (
	"context"
	"time"

	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/logicsvr/internal/labsvc"
)

// NewLab returns the Lab handler.
func NewLab(*logicsvr.Host) (labsvc.LabServer, error) { return lab{}, nil }

type lab struct{ labsvc.UnimplementedLabServer }

func (lab) Echo(ctx context.Context, req *labsvc.EchoRequest) (*labsvc.EchoReply, error) {
	if d := time.Duration(req.GetSleepMs()) * time.Millisecond; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &labsvc.EchoReply{Text: req.GetText(), RequestId: logicsvr.RequestID(ctx)}, nil
}

func (lab) Panic(_ context.Context, req *labsvc.PanicRequest) (*labsvc.PanicReply, error) {
	panic("lab: asked to panic: " + req.GetWhy())
}

func (lab) Stuck(_ context.Context, req *labsvc.EchoRequest) (*labsvc.EchoReply, error) {
	time.Sleep(time.Duration(req.GetSleepMs()) * time.Millisecond)
	return &labsvc.EchoReply{Text: req.GetText()}, nil
}
