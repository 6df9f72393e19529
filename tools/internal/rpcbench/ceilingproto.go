package rpcbench

import (
	"context"
	"errors"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/tools/internal/rpcbench/echopb"
)

// ceiling-proto is the ceiling with the protobuf work of one echo call added
// on both sides, the same work svrkit's generated code and runtime do: the
// client encodes a new EchoRequest into a reused buffer and decodes the
// response into a new EchoResponse; the server decodes the request into a
// new EchoRequest, builds a new EchoResponse from it (the handler's) and
// encodes that into a reused buffer. Both copy the payload when decoding,
// as protobuf-go does. So ceiling-proto costs ProtoCost's allocations per
// call and nothing else beyond the ceiling: the most any RPC stack that
// speaks protobuf over these frames and this transport could do here, and
// the distance from the ceiling to it is protobuf's, not a framework's.

func startCeilingProto(o Options) (System, error) {
	srv, err := startCeilingServerWith(o.EventLoops, true)
	if err != nil {
		return nil, err
	}
	client, err := dialRaw(srv.Addr().String(), o.rawConns())
	if err != nil {
		return nil, errors.Join(err, stopWithin(srv.Stop))
	}
	return &ceilingProtoSystem{ceilingSystem{srv: srv, client: client}}, nil
}

type ceilingProtoSystem struct{ ceilingSystem }

func (s *ceilingProtoSystem) NewCaller(payload []byte) Caller {
	conn := s.client.pick()
	cl := &rawCall{done: make(chan struct{}, 1)}
	req := &echopb.EchoRequest{Payload: payload} // one per caller, as svrkit's system has
	var body []byte
	return func(context.Context) ([]byte, error) {
		var err error
		body, err = proto.MarshalOptions{}.MarshalAppend(body[:0], req)
		if err != nil {
			return nil, err
		}
		if err := conn.call(cl, body); err != nil {
			return nil, err
		}
		resp := new(echopb.EchoResponse)
		if err := proto.Unmarshal(cl.buf, resp); err != nil {
			return nil, err
		}
		return resp.Payload, echoLen(resp.Payload, len(payload))
	}
}

// echoProto decodes an EchoRequest from body and returns the encoding of
// the EchoResponse that echoes it, in the connection's reused buffer.
func (cs *ceilingConn) echoProto(body []byte) ([]byte, error) {
	req := new(echopb.EchoRequest)
	if err := proto.Unmarshal(body, req); err != nil {
		return nil, err
	}
	var err error
	cs.body, err = proto.MarshalOptions{}.MarshalAppend(cs.body[:0], &echopb.EchoResponse{Payload: req.Payload})
	return cs.body, err
}
