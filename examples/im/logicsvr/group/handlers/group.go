// Package handlers implements the group Logicsvr (idl/im/group.proto):
// create groups, invite, leave, remove, rename, list members and the
// caller's groups. NewGroup is the constructor its generated main calls.
//
// Every CGI acts for the user of the session token (package
// github.com/svrkit/svrkit/examples/im/internal/session), who is the actor
// of every change. This Logicsvr checks the request (limits, that the
// users exist, through AccountData, which also gives their names) and asks
// GroupData (idl/im/groupdata.proto) for the change; GroupData applies
// the membership rules atomically with the write, logs the change and
// queues it for the fan-out worker, which writes it into the members'
// GROUPS inboxes. It keeps no state.
//
// # The caller's groups
//
// ListMyGroups reads the caller's index (UserGroups) and then each
// group's record, and shows only the groups whose record lists the caller:
// the record is the truth, the index a way to find it. So that a change is
// visible in ListMyGroups when its call answers, this Logicsvr writes the
// index entries of the users a change names (the creator and first
// members, those invited, the one who left or was removed) before it
// answers; the fan-out worker writes them again from the log, which is
// what covers a change whose caller crashed in between. Both writes carry
// the change's seq, so neither undoes a newer one. Both go through
// UserGroups.ApplyMembershipMany (package groups' Index): a creation
// naming 500 members is one call per groupdata instance and one storage
// write per storage instance, not 500 of each, so that it does not hold
// up the group's first messages, which the fan-out sends after it.
package handlers

import (
	"context"
	"slices"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/examples/im/internal/shard"
	"github.com/svrkit/svrkit/logicsvr"
	"github.com/svrkit/svrkit/svrkit"
)

// parallel bounds the calls one request makes at once (account lookups,
// group reads).
const parallel = 32

// NewGroup returns the Group handler. It needs im.AccountData,
// im.GroupData and im.UserGroups in the routing table and session_secret
// in the app config.
func NewGroup(h *logicsvr.Host) (im.GroupServer, error) {
	signer, err := session.FromApp(h)
	if err != nil {
		return nil, err
	}
	accounts, err := h.Client(im.AccountData_ServiceName)
	if err != nil {
		return nil, err
	}
	data, err := h.Client(im.GroupData_ServiceName)
	if err != nil {
		return nil, err
	}
	index, err := h.Client(im.UserGroups_ServiceName)
	if err != nil {
		return nil, err
	}
	h.Use(signer.Require(im.Group_ServiceName))
	return &groupServer{
		accounts: im.NewAccountDataClient(accounts),
		data:     im.NewGroupDataClient(data),
		indexer:  &groups.Index{Client: im.NewUserGroupsClient(index), Route: shard.Router(index)},
	}, nil
}

type groupServer struct {
	im.UnimplementedGroupServer
	accounts im.AccountDataClient
	data     im.GroupDataClient
	// indexer reads and writes the user index (its Client), writing a
	// change's entries with one call per UserGroups instance for all the
	// users it names.
	indexer *groups.Index
}

// lookup returns the users of ids as members-to-be (id and login name), in
// order: not_found for one that does not exist.
func (s *groupServer) lookup(ctx context.Context, ids []uint64) ([]*im.GroupMember, error) {
	out := make([]*im.GroupMember, len(ids))
	err := shard.ForEach(ctx, len(ids), parallel, func(ctx context.Context, i int) error {
		r, err := s.accounts.GetAccount(ctx, &im.GetAccountRequest{UserId: ids[i]})
		if svrkit.CodeOf(err) == svrkit.NotFound {
			return svrkit.Errorf(svrkit.NotFound, "no user %d", ids[i])
		}
		if err != nil {
			return err
		}
		out[i] = &im.GroupMember{UserId: ids[i], Name: r.GetProfile().GetName()}
		return nil
	})
	return out, err
}

// userIDs checks a request's user ids and returns them without duplicates
// and without skip.
func userIDs(ids []uint64, skip uint64) ([]uint64, error) {
	var out []uint64
	seen := map[uint64]bool{skip: true}
	for _, id := range ids {
		if !groups.IsUserID(id) {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "%d is not a user id", id)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// indexChange records that users joined (member) or left group at seq, before
// the call answers (see the package doc). A failure is not the caller's
// problem: the change is made, and the fan-out writes the index too.
func (s *groupServer) indexChange(ctx context.Context, group uint64, users []*im.GroupMember, member bool, seq uint64) {
	if seq == 0 || len(users) == 0 {
		return
	}
	ids := make([]uint64, len(users))
	for i, u := range users {
		ids[i] = u.GetUserId()
	}
	if err := s.indexer.Apply(ctx, group, ids, member, seq); err != nil {
		logicsvr.Logger(ctx).Warn("group index not written; the fan-out will", "group", group, "users", len(ids), "seq", seq, "err", err)
	}
}

func (s *groupServer) CreateGroup(ctx context.Context, req *im.CreateGroupRequest) (*im.GroupReply, error) {
	caller := session.From(ctx)
	if err := groups.CheckName(req.GetName()); err != nil {
		return nil, err
	}
	if n := len(req.GetClientGroupId()); n < 1 || n > groups.MaxClientID {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "client_group_id must be 1 to %d bytes", groups.MaxClientID)
	}
	ids, err := userIDs(req.GetMemberUserIds(), caller.UserID)
	if err != nil {
		return nil, err
	}
	group := groups.ID(caller.UserID, req.GetClientGroupId())
	if len(ids)+1 > groups.MaxMembers {
		return nil, groups.Full(group, 1, len(ids))
	}
	users, err := s.lookup(ctx, append([]uint64{caller.UserID}, ids...))
	if err != nil {
		return nil, err
	}
	r, err := s.data.CreateGroup(ctx, &im.CreateGroupDataRequest{
		GroupId: group, Name: req.GetName(), Owner: users[0], Members: users[1:], ClientGroupId: req.GetClientGroupId(),
	})
	if err != nil {
		return nil, err
	}
	s.indexChange(ctx, group, r.GetMembers(), true, r.GetSeq())
	return &im.GroupReply{Group: r.GetInfo(), Members: r.GetMembers(), Changed: r.GetChanged()}, nil
}

func (s *groupServer) InviteMembers(ctx context.Context, req *im.InviteMembersRequest) (*im.GroupReply, error) {
	caller := session.From(ctx)
	group := req.GetGroupId()
	if err := groups.CheckGroupID(group); err != nil {
		return nil, err
	}
	ids, err := userIDs(req.GetUserIds(), 0)
	if err != nil {
		return nil, err
	}
	switch {
	case len(ids) == 0:
		return nil, svrkit.NewError(svrkit.InvalidArgument, "user_ids is required")
	case len(ids) > groups.MaxMembers:
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "user_ids: at most %d (got %d)", groups.MaxMembers, len(ids))
	}
	users, err := s.lookup(ctx, ids)
	if err != nil {
		return nil, err
	}
	r, err := s.data.AddMembers(ctx, &im.AddMembersRequest{GroupId: group, ActorUserId: caller.UserID, Members: users})
	if err != nil {
		return nil, err
	}
	s.indexChange(ctx, group, r.GetMembers(), true, r.GetSeq())
	return &im.GroupReply{Group: r.GetInfo(), Members: r.GetMembers(), Changed: r.GetChanged()}, nil
}

func (s *groupServer) LeaveGroup(ctx context.Context, req *im.LeaveGroupRequest) (*im.GroupReply, error) {
	caller := session.From(ctx)
	group := req.GetGroupId()
	if err := groups.CheckGroupID(group); err != nil {
		return nil, err
	}
	r, err := s.data.RemoveMember(ctx, &im.RemoveMemberDataRequest{GroupId: group, ActorUserId: caller.UserID, UserId: caller.UserID})
	if err != nil {
		return nil, err
	}
	s.indexChange(ctx, group, r.GetMembers(), false, r.GetSeq())
	return &im.GroupReply{Changed: r.GetChanged()}, nil
}

func (s *groupServer) RemoveMember(ctx context.Context, req *im.RemoveMemberRequest) (*im.GroupReply, error) {
	caller := session.From(ctx)
	group, user := req.GetGroupId(), req.GetUserId()
	if err := groups.CheckGroupID(group); err != nil {
		return nil, err
	}
	if !groups.IsUserID(user) {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "%d is not a user id", user)
	}
	r, err := s.data.RemoveMember(ctx, &im.RemoveMemberDataRequest{GroupId: group, ActorUserId: caller.UserID, UserId: user})
	if err != nil {
		return nil, err
	}
	s.indexChange(ctx, group, r.GetMembers(), false, r.GetSeq())
	reply := &im.GroupReply{Group: r.GetInfo(), Members: r.GetMembers(), Changed: r.GetChanged()}
	if user == caller.UserID {
		reply.Group = nil // left: as LeaveGroup
	}
	return reply, nil
}

func (s *groupServer) RenameGroup(ctx context.Context, req *im.RenameGroupRequest) (*im.GroupReply, error) {
	caller := session.From(ctx)
	if err := groups.CheckGroupID(req.GetGroupId()); err != nil {
		return nil, err
	}
	if err := groups.CheckName(req.GetName()); err != nil {
		return nil, err
	}
	r, err := s.data.Rename(ctx, &im.RenameDataRequest{GroupId: req.GetGroupId(), ActorUserId: caller.UserID, Name: req.GetName()})
	if err != nil {
		return nil, err
	}
	return &im.GroupReply{Group: r.GetInfo(), Changed: r.GetChanged()}, nil
}

// memberRecord returns group's record if caller is a member:
// permission_denied otherwise.
func (s *groupServer) memberRecord(ctx context.Context, group, caller uint64) (*im.GroupRecord, error) {
	if err := groups.CheckGroupID(group); err != nil {
		return nil, err
	}
	rec, err := s.data.GetGroup(ctx, &im.GetGroupRequest{GroupId: group})
	if err != nil {
		return nil, err
	}
	if !isMember(rec, caller) {
		return nil, svrkit.Errorf(svrkit.PermissionDenied, "you are not a member of group %d", group)
	}
	return rec, nil
}

func isMember(rec *im.GroupRecord, user uint64) bool {
	return slices.ContainsFunc(rec.GetMembers(), func(m *im.MemberRecord) bool { return m.GetMember().GetUserId() == user })
}

func (s *groupServer) ListMembers(ctx context.Context, req *im.ListMembersRequest) (*im.MemberList, error) {
	caller := session.From(ctx)
	rec, err := s.memberRecord(ctx, req.GetGroupId(), caller.UserID)
	if err != nil {
		return nil, err
	}
	out := &im.MemberList{Group: rec.GetInfo(), Members: make([]*im.GroupMember, len(rec.GetMembers()))}
	for i, m := range rec.GetMembers() {
		out.Members[i] = m.GetMember()
	}
	return out, nil
}

func (s *groupServer) ListMyGroups(ctx context.Context, _ *im.ListMyGroupsRequest) (*im.GroupList, error) {
	caller := session.From(ctx)
	ids, err := s.indexer.Client.ListUserGroups(ctx, &im.ListUserGroupsRequest{UserId: caller.UserID})
	if err != nil {
		return nil, err
	}
	infos := make([]*im.GroupInfo, len(ids.GetGroupIds()))
	err = shard.ForEach(ctx, len(infos), parallel, func(ctx context.Context, i int) error {
		rec, err := s.data.GetGroup(ctx, &im.GetGroupRequest{GroupId: ids.GetGroupIds()[i]})
		if svrkit.CodeOf(err) == svrkit.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		if isMember(rec, caller.UserID) {
			infos[i] = rec.GetInfo()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := &im.GroupList{}
	for _, g := range infos {
		if g != nil {
			out.Groups = append(out.Groups, g)
		}
	}
	return out, nil
}
