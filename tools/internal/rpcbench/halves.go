package rpcbench

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/tools/internal/rpcbench/echopb"
)

// The two halves: svrkit's client against the ceiling's server, and the
// ceiling's raw client against svrkit's server. Each swaps one side of the
// svrkit system for the ceiling's, so the distance from svrkit to the
// ceiling splits into what its client costs and what its server costs,
// measured rather than guessed from a profile of both in one process.
//
// They speak the same frames: the ceiling's server echoes a request's body
// as the response's, and an encoded EchoRequest is a valid EchoResponse
// (the same single bytes field), so svrkit's client decodes the echo; and
// the raw client sends an EchoRequest encoded once per caller and checks
// the payload in the encoded EchoResponse it gets back with protowire,
// without decoding a message.
// The ceiling's server greets each connection with a hello frame, as
// svrkit's client requires; the raw clients skip frames that are not
// responses.

// startSvrkitClientHalf drives the ceiling's server with svrkit's client.
func startSvrkitClientHalf(o Options) (System, error) {
	srv, err := startCeilingServer(o.EventLoops)
	if err != nil {
		return nil, err
	}
	client, err := svrkit.NewClient(srv.Addr().String())
	if err != nil {
		return nil, errors.Join(err, stopWithin(srv.Stop))
	}
	return &svrkitSystem{stop: srv.Stop, client: client, method: &EchoServiceDesc.Methods[0]}, nil
}

// startSvrkitServerHalf drives svrkit's server with the ceiling's raw
// client.
func startSvrkitServerHalf(o Options) (System, error) {
	if EchoServiceDesc.Methods[0].CmdID != ceilingCmdID {
		return nil, fmt.Errorf("rpcbench: the raw client sends cmdid %d, Echo is %d", ceilingCmdID, EchoServiceDesc.Methods[0].CmdID)
	}
	srv, err := startSvrkitServer(o, &EchoServiceDesc)
	if err != nil {
		return nil, err
	}
	client, err := dialRaw(srv.Addr().String(), o.rawConns())
	if err != nil {
		return nil, errors.Join(err, stopWithin(srv.Shutdown))
	}
	return &svrkitServerHalf{srv: srv, client: client}, nil
}

type svrkitServerHalf struct {
	srv    *svrkit.Server
	client *rawClient
}

func (s *svrkitServerHalf) NewCaller(payload []byte) Caller {
	conn := s.client.pick()
	body, err := proto.Marshal(&echopb.EchoRequest{Payload: payload})
	if err != nil {
		return func(context.Context) ([]byte, error) { return nil, err }
	}
	cl := &rawCall{buf: make([]byte, 0, len(body)), done: make(chan struct{}, 1)}
	return func(context.Context) ([]byte, error) {
		if err := conn.call(cl, body); err != nil {
			return nil, err
		}
		got, err := echoedPayload(cl.buf)
		if err != nil {
			return nil, err
		}
		return got, echoLen(got, len(payload))
	}
}

func (s *svrkitServerHalf) Close() error {
	return errors.Join(s.client.Close(), stopWithin(s.srv.Shutdown))
}

// echoedPayload returns the payload field of an encoded EchoResponse,
// pointing into b.
func echoedPayload(b []byte) ([]byte, error) {
	var payload []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			payload, b = v, b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		b = b[m:]
	}
	return payload, nil
}
