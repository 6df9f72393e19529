// Package handlers implements the contact Logicsvr (idl/im/contact.proto):
// add, remove and list the caller's contacts. NewContact is the constructor
// its generated main calls.
//
// Every CGI acts for the user of the session token (package
// github.com/svrkit/svrkit/examples/im/internal/session, whose interceptor
// NewContact installs), never for a user named in the request: the only user ids in requests are the contacts
// themselves. The lists, their versions and their sync items are kept by the
// ContactData service (idl/im/data.proto); names are resolved through
// AccountData. This Logicsvr keeps no state.
package handlers

import (
	"context"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// NewContact returns the Contact handler. It needs im.AccountData and
// im.ContactData in the routing table and session_secret in the app config.
func NewContact(h *logicsvr.Host) (im.ContactServer, error) {
	signer, err := session.FromApp(h)
	if err != nil {
		return nil, err
	}
	accounts, err := h.Client(im.AccountData_ServiceName)
	if err != nil {
		return nil, err
	}
	contacts, err := h.Client(im.ContactData_ServiceName)
	if err != nil {
		return nil, err
	}
	h.Use(signer.Require(im.Contact_ServiceName))
	return &contactServer{accounts: im.NewAccountDataClient(accounts), contacts: im.NewContactDataClient(contacts)}, nil
}

type contactServer struct {
	im.UnimplementedContactServer
	accounts im.AccountDataClient
	contacts im.ContactDataClient
}

func (s *contactServer) AddContact(ctx context.Context, req *im.AddContactRequest) (*im.ContactReply, error) {
	caller := session.From(ctx)
	if req.GetName() == "" || len(req.GetName()) > 32 {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "name must be 1 to 32 bytes")
	}
	rec, err := s.accounts.LookupAccount(ctx, &im.LookupAccountRequest{Name: req.GetName()})
	if err != nil {
		if svrkit.CodeOf(err) == svrkit.NotFound {
			return nil, svrkit.Errorf(svrkit.NotFound, "no user named %q", req.GetName())
		}
		return nil, err
	}
	id := rec.GetUserId()
	if id == caller.UserID {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "cannot add yourself as a contact")
	}
	return s.contacts.PutContact(ctx, &im.PutContactRequest{UserId: caller.UserID, Contact: &im.ContactEntry{
		UserId:    id,
		Name:      rec.GetProfile().GetName(),
		Nickname:  rec.GetProfile().GetNickname(),
		AddedUnix: time.Now().Unix(),
	}})
}

func (s *contactServer) RemoveContact(ctx context.Context, req *im.RemoveContactRequest) (*im.ContactReply, error) {
	caller := session.From(ctx)
	if req.GetUserId() == 0 {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "user_id is required")
	}
	return s.contacts.DeleteContact(ctx, &im.DeleteContactRequest{UserId: caller.UserID, ContactUserId: req.GetUserId()})
}

func (s *contactServer) ListContacts(ctx context.Context, _ *im.ListContactsRequest) (*im.ContactList, error) {
	caller := session.From(ctx)
	return s.contacts.GetContacts(ctx, &im.GetContactsRequest{UserId: caller.UserID})
}
