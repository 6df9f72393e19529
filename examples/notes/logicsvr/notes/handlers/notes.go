// Package handlers implements the notes Logicsvr: NewNotes is the
// constructor its generated main calls. It calls the users Logicsvr over
// binary RPC, through the routing table of its config.
package handlers

import (
	"context"
	"sync"

	"github.com/svrkit/svrkit/examples/notes"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// MaxNoteBytes bounds a note's text.
const MaxNoteBytes = 1000

// NewNotes returns the Notes handler. It needs notes.Users in the routing
// table.
func NewNotes(h *logicsvr.Host) (notes.NotesServer, error) {
	inv, err := h.Client(notes.Users_ServiceName)
	if err != nil {
		return nil, err
	}
	return &notesServer{users: notes.NewUsersClient(inv), byAuthor: map[string][]*notes.Note{}}, nil
}

type notesServer struct {
	notes.UnimplementedNotesServer
	users notes.UsersClient

	mu       sync.Mutex
	seq      int64
	byAuthor map[string][]*notes.Note
}

func (s *notesServer) AddNote(ctx context.Context, req *notes.AddNoteRequest) (*notes.Note, error) {
	if req.GetText() == "" || len(req.GetText()) > MaxNoteBytes {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "text must be 1 to %d bytes", MaxNoteBytes)
	}
	u, err := s.users.GetUser(ctx, &notes.GetUserRequest{Name: req.GetAuthor()})
	if err != nil {
		if svrkit.CodeOf(err) == svrkit.NotFound {
			return nil, svrkit.Errorf(svrkit.FailedPrecondition, "author %q is not registered", req.GetAuthor())
		}
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	n := &notes.Note{Author: u.GetName(), Text: req.GetText(), Seq: s.seq, AuthorCheckedIn: u.GetRequestId()}
	s.byAuthor[n.Author] = append(s.byAuthor[n.Author], n)
	return n, nil
}

func (s *notesServer) ListNotes(_ context.Context, req *notes.ListNotesRequest) (*notes.ListNotesReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &notes.ListNotesReply{Notes: s.byAuthor[req.GetAuthor()]}, nil
}
