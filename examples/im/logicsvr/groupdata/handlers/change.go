package handlers

import (
	"context"
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/internal/groups"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/svrkit/monitor"
)

// maxNameLen bounds a member's stored login name.
const maxNameLen = 64

// edit is one change of a group: given the group's state, the seq the
// change would take and the time, it returns the new record, the change
// for the log and the reply; or a nil change when the group is already as
// asked (the reply then says so).
type edit func(st *groupState, seq uint64, now time.Time) (*im.GroupRecord, *im.GroupChange, *im.GroupDataReply, error)

// change applies f to group under its lock and writes the result (see the
// package doc: the record and the log entry in one Batch), then publishes
// the entry. A call that changed nothing publishes a wake-up when the
// group has entries not fanned out yet, in case it repeats a call whose
// publish was lost.
func (s *Server) change(ctx context.Context, group uint64, f edit) (*im.GroupDataReply, error) {
	if err := groups.CheckGroupID(group); err != nil {
		return nil, err
	}
	reply, wake, err := s.changeLocked(ctx, group, f)
	if err != nil {
		return nil, err
	}
	if wake != 0 {
		if err := s.publish(ctx, group, wake); err != nil {
			return nil, err
		}
	}
	return reply, nil
}

// changeLocked is change's part under the lock; wake is the seq to
// publish, 0 for none.
func (s *Server) changeLocked(ctx context.Context, group uint64, f edit) (reply *im.GroupDataReply, wake uint64, err error) {
	defer s.lock(group)()
	fromStore := false
	for attempt := 0; ; attempt++ {
		st, err := s.load(ctx, group, fromStore)
		if err != nil {
			return nil, 0, err
		}
		if st, err = s.withFanned(ctx, group, st); err != nil {
			return nil, 0, err
		}
		seq := st.lastSeq + 1
		rec, ch, reply, err := f(st, seq, s.now())
		if err != nil {
			return nil, 0, err
		}
		if ch == nil {
			if st.lastSeq > st.fanned {
				wake = st.lastSeq
			}
			return reply, wake, nil
		}
		// Former members the fan-out has passed receive nothing more.
		rec.Former = slices.DeleteFunc(rec.Former, func(fm *im.FormerMember) bool { return fm.GetLeftSeq() <= st.fanned })
		rec.Info.Version = seq
		rec.Info.MemberCount = uint32(len(rec.Members))
		ch.Group = proto.CloneOf(rec.Info)
		val, err := proto.Marshal(rec)
		if err != nil {
			return nil, 0, svrkit.Errorf(svrkit.Internal, "encode group record: %v", err)
		}
		entry, err := proto.Marshal(&im.GroupLogEntry{Entry: &im.GroupLogEntry_Change{Change: ch}})
		if err != nil {
			return nil, 0, svrkit.Errorf(svrkit.Internal, "encode group change: %v", err)
		}
		r, err := s.storage.Batch(ctx, &im.BatchRequest{UserId: group, Ops: []*im.BatchOp{
			{Kind: im.BatchOp_KIND_PUT, Key: keyGroup, Value: val, ExpectVersion: st.version},
			{Kind: im.BatchOp_KIND_PUT_ENTRY, Key: rowLog, Version: seq, Value: entry},
		}})
		if svrkit.CodeOf(err) == svrkit.Aborted && attempt+1 < casAttempts {
			fromStore = true // written elsewhere: re-read
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		next := *st
		next.rec, next.version, next.lastSeq = rec, r.GetResults()[0], seq
		s.cache.Put(group, &next)
		monitor.Add(im.Monitor_GROUP_CHANGES_ID, 1)
		reply.Info, reply.Changed, reply.Seq = proto.CloneOf(rec.Info), true, seq
		return reply, seq, nil
	}
}

// checkMember checks a member to be stored.
func checkMember(m *im.GroupMember) error {
	switch {
	case m == nil || !groups.IsUserID(m.GetUserId()):
		return svrkit.Errorf(svrkit.InvalidArgument, "member %d is not a user id", m.GetUserId())
	case len(m.GetName()) > maxNameLen || !utf8.ValidString(m.GetName()):
		return svrkit.Errorf(svrkit.InvalidArgument, "member name must be at most %d bytes of UTF-8", maxNameLen)
	}
	return nil
}

// cloneRecord returns a copy of rec to edit.
func cloneRecord(rec *im.GroupRecord) *im.GroupRecord { return proto.CloneOf(rec) }

func memberRecords(rec *im.GroupRecord) []*im.GroupMember {
	out := make([]*im.GroupMember, len(rec.GetMembers()))
	for i, m := range rec.GetMembers() {
		out[i] = m.GetMember()
	}
	return out
}

// CreateGroup implements im.GroupDataServer.
func (s *Server) CreateGroup(ctx context.Context, req *im.CreateGroupDataRequest) (*im.GroupDataReply, error) {
	group, owner := req.GetGroupId(), req.GetOwner()
	if err := groups.CheckName(req.GetName()); err != nil {
		return nil, err
	}
	if err := checkMember(owner); err != nil {
		return nil, err
	}
	if n := len(req.GetClientGroupId()); n < 1 || n > groups.MaxClientID {
		return nil, svrkit.Errorf(svrkit.InvalidArgument, "client_group_id must be 1 to %d bytes", groups.MaxClientID)
	}
	seen := map[uint64]bool{owner.GetUserId(): true}
	for _, m := range req.GetMembers() {
		if err := checkMember(m); err != nil {
			return nil, err
		}
		if seen[m.GetUserId()] {
			return nil, svrkit.Errorf(svrkit.InvalidArgument, "user %d is listed twice (or is the owner)", m.GetUserId())
		}
		seen[m.GetUserId()] = true
	}
	if n := len(req.GetMembers()) + 1; n > groups.MaxMembers {
		return nil, groups.Full(group, 1, n-1)
	}
	return s.change(ctx, group, func(st *groupState, seq uint64, now time.Time) (*im.GroupRecord, *im.GroupChange, *im.GroupDataReply, error) {
		if rec := st.rec; rec != nil {
			if rec.GetCreatorUserId() != owner.GetUserId() || rec.GetClientGroupId() != req.GetClientGroupId() {
				return nil, nil, nil, svrkit.Errorf(svrkit.AlreadyExists, "group id %d is taken by another creation", group)
			}
			// A repeat: answer the group as it is, with the creation's seq.
			return nil, nil, &im.GroupDataReply{Info: proto.CloneOf(rec.GetInfo()), Members: memberRecords(rec), Seq: 1}, nil
		}
		ms := now.UnixMilli()
		o := proto.CloneOf(owner)
		o.JoinedUnixMs, o.InviterUserId = ms, o.GetUserId()
		rec := &im.GroupRecord{
			Info: &im.GroupInfo{
				GroupId: group, Name: req.GetName(), OwnerUserId: owner.GetUserId(), CreatedUnixMs: ms,
			},
			Members:       []*im.MemberRecord{{Member: o, JoinedSeq: seq}},
			ClientGroupId: req.GetClientGroupId(),
			CreatorUserId: owner.GetUserId(),
		}
		for _, m := range req.GetMembers() {
			m = proto.CloneOf(m)
			m.JoinedUnixMs, m.InviterUserId = ms, owner.GetUserId()
			rec.Members = append(rec.Members, &im.MemberRecord{Member: m, JoinedSeq: seq})
		}
		all := memberRecords(rec)
		ch := &im.GroupChange{Kind: im.GroupChange_KIND_CREATED, ActorUserId: owner.GetUserId(), Members: all}
		return rec, ch, &im.GroupDataReply{Members: all}, nil
	})
}

// AddMembers implements im.GroupDataServer.
func (s *Server) AddMembers(ctx context.Context, req *im.AddMembersRequest) (*im.GroupDataReply, error) {
	group, actor := req.GetGroupId(), req.GetActorUserId()
	if len(req.GetMembers()) == 0 {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "no members to add")
	}
	for _, m := range req.GetMembers() {
		if err := checkMember(m); err != nil {
			return nil, err
		}
	}
	return s.change(ctx, group, func(st *groupState, seq uint64, now time.Time) (*im.GroupRecord, *im.GroupChange, *im.GroupDataReply, error) {
		if err := exists(st, group); err != nil {
			return nil, nil, nil, err
		}
		if _, ok := member(st.rec, actor); !ok {
			return nil, nil, nil, notMember(group, actor)
		}
		var added []*im.GroupMember
		seen := map[uint64]bool{}
		for _, m := range req.GetMembers() {
			if _, in := member(st.rec, m.GetUserId()); in || seen[m.GetUserId()] {
				continue
			}
			seen[m.GetUserId()] = true
			m = proto.CloneOf(m)
			m.JoinedUnixMs, m.InviterUserId = now.UnixMilli(), actor
			added = append(added, m)
		}
		if len(added) == 0 {
			return nil, nil, &im.GroupDataReply{Info: proto.CloneOf(st.rec.GetInfo())}, nil
		}
		if have := len(st.rec.GetMembers()); have+len(added) > groups.MaxMembers {
			return nil, nil, nil, groups.Full(group, have, len(added))
		}
		rec := cloneRecord(st.rec)
		for _, m := range added {
			rec.Members = append(rec.Members, &im.MemberRecord{Member: m, JoinedSeq: seq})
		}
		ch := &im.GroupChange{Kind: im.GroupChange_KIND_MEMBERS_ADDED, ActorUserId: actor, Members: added}
		return rec, ch, &im.GroupDataReply{Members: added}, nil
	})
}

// RemoveMember implements im.GroupDataServer.
func (s *Server) RemoveMember(ctx context.Context, req *im.RemoveMemberDataRequest) (*im.GroupDataReply, error) {
	group, actor, user := req.GetGroupId(), req.GetActorUserId(), req.GetUserId()
	if !groups.IsUserID(user) || !groups.IsUserID(actor) {
		return nil, svrkit.NewError(svrkit.InvalidArgument, "actor and user must be user ids")
	}
	return s.change(ctx, group, func(st *groupState, seq uint64, now time.Time) (*im.GroupRecord, *im.GroupChange, *im.GroupDataReply, error) {
		if err := exists(st, group); err != nil {
			return nil, nil, nil, err
		}
		leaving := actor == user
		_, actorIn := member(st.rec, actor)
		switch {
		case leaving && !actorIn:
			return nil, nil, &im.GroupDataReply{}, nil // left already: nothing to show
		case !actorIn:
			return nil, nil, nil, notMember(group, actor)
		case !leaving && st.rec.GetInfo().GetOwnerUserId() != actor:
			return nil, nil, nil, svrkit.Errorf(svrkit.PermissionDenied, "only the owner of group %d may remove members", group)
		}
		m, in := member(st.rec, user)
		if !in {
			return nil, nil, &im.GroupDataReply{Info: proto.CloneOf(st.rec.GetInfo())}, nil
		}
		rec := cloneRecord(st.rec)
		rec.Members = slices.DeleteFunc(rec.Members, func(r *im.MemberRecord) bool { return r.GetMember().GetUserId() == user })
		rec.Former = append(rec.Former, &im.FormerMember{UserId: user, JoinedSeq: m.GetJoinedSeq(), LeftSeq: seq})
		if rec.Info.OwnerUserId == user {
			// The member who joined earliest inherits the group; an
			// empty group has no owner.
			rec.Info.OwnerUserId = 0
			if len(rec.Members) > 0 {
				rec.Info.OwnerUserId = rec.Members[0].GetMember().GetUserId()
			}
		}
		kind := im.GroupChange_KIND_MEMBER_REMOVED
		if leaving {
			kind = im.GroupChange_KIND_MEMBER_LEFT
		}
		gone := []*im.GroupMember{proto.CloneOf(m.GetMember())}
		ch := &im.GroupChange{Kind: kind, ActorUserId: actor, Members: gone}
		return rec, ch, &im.GroupDataReply{Members: gone}, nil
	})
}

// Rename implements im.GroupDataServer.
func (s *Server) Rename(ctx context.Context, req *im.RenameDataRequest) (*im.GroupDataReply, error) {
	group, actor := req.GetGroupId(), req.GetActorUserId()
	if err := groups.CheckName(req.GetName()); err != nil {
		return nil, err
	}
	return s.change(ctx, group, func(st *groupState, seq uint64, now time.Time) (*im.GroupRecord, *im.GroupChange, *im.GroupDataReply, error) {
		if err := exists(st, group); err != nil {
			return nil, nil, nil, err
		}
		if _, ok := member(st.rec, actor); !ok {
			return nil, nil, nil, notMember(group, actor)
		}
		if st.rec.GetInfo().GetName() == req.GetName() {
			return nil, nil, &im.GroupDataReply{Info: proto.CloneOf(st.rec.GetInfo())}, nil
		}
		rec := cloneRecord(st.rec)
		rec.Info.Name = req.GetName()
		ch := &im.GroupChange{Kind: im.GroupChange_KIND_RENAMED, ActorUserId: actor}
		return rec, ch, &im.GroupDataReply{}, nil
	})
}

func exists(st *groupState, group uint64) error {
	if st.rec == nil {
		return svrkit.Errorf(svrkit.NotFound, "no group %d", group)
	}
	return nil
}

func notMember(group, user uint64) error {
	return svrkit.Errorf(svrkit.PermissionDenied, "user %d is not a member of group %d", user, group)
}
