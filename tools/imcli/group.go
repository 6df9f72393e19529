package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/svrkit"
)

// Group commands. A GROUP argument is a group id, or the name of one of
// the user's groups (which must be unique among them); a MEMBER a user
// name from the contacts, or a user id.

// resolveGroup turns GROUP into a group id.
func (c *cli) resolveGroup(cl *imclient.Client, st *state, g string) (uint64, error) {
	if id, err := strconv.ParseUint(g, 10, 64); err == nil {
		return id, nil
	}
	l, err := cl.MyGroups(c.ctx)
	if err != nil {
		return 0, err
	}
	var found []uint64
	for _, info := range l.GetGroups() {
		st.Names[info.GetGroupId()] = info.GetName()
		if info.GetName() == g {
			found = append(found, info.GetGroupId())
		}
	}
	switch len(found) {
	case 0:
		return 0, svrkit.Errorf(svrkit.NotFound, "you are in no group named %q (imcli groups lists yours)", g)
	case 1:
		return found[0], nil
	}
	return 0, usagef("you are in %d groups named %q: name one by its id (imcli groups)", len(found), g)
}

// resolveUsers turns MEMBER arguments into user ids.
func (c *cli) resolveUsers(cl *imclient.Client, st *state, who []string) ([]uint64, error) {
	ids := make([]uint64, len(who))
	for i, w := range who {
		id, err := c.resolve(cl, st, w)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

func (c *cli) printGroupReply(r *im.GroupReply, what string) {
	if c.json {
		c.printProto(r)
		return
	}
	if !r.GetChanged() {
		c.printf("nothing to change")
		return
	}
	var names []string
	for _, m := range r.GetMembers() {
		names = append(names, m.GetName())
	}
	g := r.GetGroup()
	c.printf("%s %s; group %q (%d) has %d members", what, strings.Join(names, ", "), g.GetName(), g.GetGroupId(), g.GetMemberCount())
}

func (c *cli) newgroup(args []string) error {
	if len(args) < 1 {
		return usagef("usage: newgroup NAME [MEMBER...]")
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	ids, err := c.resolveUsers(cl, st, args[1:])
	if err != nil {
		return err
	}
	r, err := cl.CreateGroup(c.ctx, args[0], ids, "")
	if err != nil {
		return err
	}
	st.Names[r.GetGroup().GetGroupId()] = r.GetGroup().GetName()
	_ = st.save(path)
	if c.json {
		c.printProto(r)
		return nil
	}
	c.printf("created group %q (%d) with %d members; send to it: imcli gsend %s TEXT",
		r.GetGroup().GetName(), r.GetGroup().GetGroupId(), r.GetGroup().GetMemberCount(), args[0])
	return nil
}

func (c *cli) groups(args []string) error {
	if len(args) != 0 {
		return usagef("usage: groups")
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	l, err := cl.MyGroups(c.ctx)
	if err != nil {
		return err
	}
	for _, g := range l.GetGroups() {
		st.Names[g.GetGroupId()] = g.GetName()
	}
	_ = st.save(path)
	if c.json {
		c.printProto(l)
		return nil
	}
	if len(l.GetGroups()) == 0 {
		c.printf("in no group yet (create one: imcli newgroup NAME MEMBER...)")
	}
	for _, g := range l.GetGroups() {
		c.printf("%-20s group %-20d %3d members, owner %s", g.GetName(), g.GetGroupId(), g.GetMemberCount(), c.name(cl, st, g.GetOwnerUserId()))
	}
	return nil
}

func (c *cli) members(args []string) error {
	if len(args) != 1 {
		return usagef("usage: members GROUP")
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	g, err := c.resolveGroup(cl, st, args[0])
	if err != nil {
		return err
	}
	l, err := cl.GroupMembers(c.ctx, g)
	if err != nil {
		return err
	}
	for _, m := range l.GetMembers() {
		st.Names[m.GetUserId()] = m.GetName()
	}
	_ = st.save(path)
	if c.json {
		c.printProto(l)
		return nil
	}
	c.printf("group %q (%d), %d members:", l.GetGroup().GetName(), l.GetGroup().GetGroupId(), len(l.GetMembers()))
	for _, m := range l.GetMembers() {
		owner := ""
		if m.GetUserId() == l.GetGroup().GetOwnerUserId() {
			owner = "  (owner)"
		}
		c.printf("  %-20s user %-6d joined %s%s", m.GetName(), m.GetUserId(), time.UnixMilli(m.GetJoinedUnixMs()).Format(time.DateTime), owner)
	}
	return nil
}

func (c *cli) invite(args []string) error {
	if len(args) < 2 {
		return usagef("usage: invite GROUP MEMBER...")
	}
	st, _, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	g, err := c.resolveGroup(cl, st, args[0])
	if err != nil {
		return err
	}
	ids, err := c.resolveUsers(cl, st, args[1:])
	if err != nil {
		return err
	}
	r, err := cl.InviteMembers(c.ctx, g, ids)
	if err != nil {
		return err
	}
	c.printGroupReply(r, "added")
	return nil
}

func (c *cli) leave(args []string) error {
	if len(args) != 1 {
		return usagef("usage: leave GROUP")
	}
	st, _, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	g, err := c.resolveGroup(cl, st, args[0])
	if err != nil {
		return err
	}
	r, err := cl.LeaveGroup(c.ctx, g)
	if err != nil {
		return err
	}
	if c.json {
		c.printProto(r)
		return nil
	}
	if !r.GetChanged() {
		c.printf("you were not in group %s", args[0])
		return nil
	}
	c.printf("left group %s", args[0])
	return nil
}

func (c *cli) kick(args []string) error {
	if len(args) != 2 {
		return usagef("usage: kick GROUP MEMBER")
	}
	st, _, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	g, err := c.resolveGroup(cl, st, args[0])
	if err != nil {
		return err
	}
	u, err := c.resolveMember(cl, st, g, args[1])
	if err != nil {
		return err
	}
	r, err := cl.RemoveMember(c.ctx, g, u)
	if err != nil {
		return err
	}
	if r.GetGroup() == nil && r.GetChanged() && !c.json {
		c.printf("left group %s", args[0]) // kicked oneself
		return nil
	}
	c.printGroupReply(r, "removed")
	return nil
}

// resolveMember finds a member by name among a group's members (a member
// need not be a contact), or takes a user id.
func (c *cli) resolveMember(cl *imclient.Client, st *state, g uint64, who string) (uint64, error) {
	if id, err := strconv.ParseUint(who, 10, 64); err == nil {
		return id, nil
	}
	l, err := cl.GroupMembers(c.ctx, g)
	if err != nil {
		return 0, err
	}
	for _, m := range l.GetMembers() {
		if m.GetName() == who {
			return m.GetUserId(), nil
		}
	}
	return 0, svrkit.Errorf(svrkit.NotFound, "%s is not a member of group %d", who, g)
}

func (c *cli) rename(args []string) error {
	if len(args) < 2 {
		return usagef("usage: rename GROUP NEWNAME")
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	g, err := c.resolveGroup(cl, st, args[0])
	if err != nil {
		return err
	}
	r, err := cl.RenameGroup(c.ctx, g, strings.Join(args[1:], " "))
	if err != nil {
		return err
	}
	st.Names[g] = r.GetGroup().GetName()
	_ = st.save(path)
	if c.json {
		c.printProto(r)
		return nil
	}
	c.printf("group %d is now %q", g, r.GetGroup().GetName())
	return nil
}

func (c *cli) gsend(args []string) error {
	if len(args) < 2 {
		return usagef("usage: gsend GROUP TEXT...")
	}
	st, _, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	g, err := c.resolveGroup(cl, st, args[0])
	if err != nil {
		return err
	}
	id := imclient.NewClientMsgID()
	r, err := cl.SendGroupText(c.ctx, g, id, strings.Join(args[1:], " "))
	if err != nil {
		return err
	}
	if c.json {
		c.printJSON(map[string]any{"group_id": g, "client_msg_id": id, "sent_unix_ms": r.GetSentUnixMs(), "duplicate": r.GetDuplicate()})
		return nil
	}
	c.printf("sent to group %s at %s", args[0], time.UnixMilli(r.GetSentUnixMs()).Format(time.TimeOnly))
	return nil
}

// printGroupChange prints a GROUPS sync item.
func (c *cli) printGroupChange(cl *imclient.Client, st *state, at string, ch *im.GroupChange) {
	g := ch.GetGroup()
	st.Names[g.GetGroupId()] = g.GetName()
	var names []string
	for _, m := range ch.GetMembers() {
		st.Names[m.GetUserId()] = m.GetName()
		names = append(names, c.name(cl, st, m.GetUserId()))
	}
	actor := c.name(cl, st, ch.GetActorUserId())
	var what string
	switch ch.GetKind() {
	case im.GroupChange_KIND_CREATED:
		what = fmt.Sprintf("%s created it with %s", actor, strings.Join(names, ", "))
	case im.GroupChange_KIND_MEMBERS_ADDED:
		what = fmt.Sprintf("%s added %s", actor, strings.Join(names, ", "))
	case im.GroupChange_KIND_MEMBER_LEFT:
		what = fmt.Sprintf("%s left", strings.Join(names, ", "))
	case im.GroupChange_KIND_MEMBER_REMOVED:
		what = fmt.Sprintf("%s removed %s", actor, strings.Join(names, ", "))
	case im.GroupChange_KIND_RENAMED:
		what = fmt.Sprintf("%s renamed it", actor)
	default:
		what = ch.GetKind().String()
	}
	c.printf("[%s] group %s (%d): %s", at, printable(g.GetName()), g.GetGroupId(), what)
}
