package svrkit_test

import (
	"errors"
	"io/fs"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svrkit/svrkit/svrkit"
)

// An error keeps its cause for errors.Is and errors.As on the side that
// made it, and its code through further wrapping.
func TestErrorCause(t *testing.T) {
	err := svrkit.Errorf(svrkit.NotFound, "profile of %d: %w", 7, fs.ErrNotExist)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("errors.Is does not see the cause")
	}
	if got, want := err.Message(), "profile of 7: file does not exist"; got != want {
		t.Fatalf("message = %q, want %q", got, want)
	}
	outer := errors.Join(errors.New("while syncing"), err)
	if svrkit.CodeOf(outer) != svrkit.NotFound {
		t.Fatalf("CodeOf(wrapped) = %v", svrkit.CodeOf(outer))
	}
	if !errors.Is(outer, svrkit.NewError(svrkit.NotFound, "")) {
		t.Fatal("errors.Is by code does not match")
	}
	plain := svrkit.AsError(fs.ErrPermission)
	if plain.Code() != svrkit.Unknown || !errors.Is(plain, fs.ErrPermission) {
		t.Fatalf("AsError(plain) = %v, cause kept %v", plain, errors.Is(plain, fs.ErrPermission))
	}
}

// Typed details cross the wire with the status.
func TestErrorDetailsCrossTheWire(t *testing.T) {
	s := startServer(t, &testService{})
	c := newClient(t, s.Addr().String())
	err := c.Invoke(ctxTimeout(t, 5*time.Second), methodByCmd(cmdFail), wrapperspb.UInt32(1042), new(emptypb.Empty))
	var se *svrkit.Error
	if !errors.As(err, &se) || se.Code() != 1042 {
		t.Fatalf("err = %v", err)
	}
	if len(se.Details()) != 1 {
		t.Fatalf("got %d details, want 1", len(se.Details()))
	}
	var d wrapperspb.UInt32Value
	if err := se.Details()[0].UnmarshalTo(&d); err != nil || d.Value != 1042 {
		t.Fatalf("detail = %v, %v", &d, err)
	}
}
