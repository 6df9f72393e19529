package imclient

import (
	"context"

	"github.com/svrkit/svrkit/examples/im"
)

// CreateGroup creates a group named name with the caller and members,
// retrying until it is answered or ctx ends: clientGroupID (made up when
// "") makes a repeat answer the group the first attempt created.
func (c *Client) CreateGroup(ctx context.Context, name string, members []uint64, clientGroupID string) (*im.GroupReply, error) {
	if clientGroupID == "" {
		clientGroupID = NewClientMsgID()
	}
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	req := &im.CreateGroupRequest{Name: name, MemberUserIds: members, ClientGroupId: clientGroupID}
	return retry(ctx, func(ctx context.Context) (*im.GroupReply, error) { return c.group.CreateGroup(ctx, req) })
}

// InviteMembers adds users to a group the caller is in.
func (c *Client) InviteMembers(ctx context.Context, group uint64, users []uint64) (*im.GroupReply, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.group.InviteMembers(ctx, &im.InviteMembersRequest{GroupId: group, UserIds: users})
}

// LeaveGroup takes the caller out of a group.
func (c *Client) LeaveGroup(ctx context.Context, group uint64) (*im.GroupReply, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.group.LeaveGroup(ctx, &im.LeaveGroupRequest{GroupId: group})
}

// RemoveMember takes a member out of a group the caller owns.
func (c *Client) RemoveMember(ctx context.Context, group, user uint64) (*im.GroupReply, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.group.RemoveMember(ctx, &im.RemoveMemberRequest{GroupId: group, UserId: user})
}

// RenameGroup renames a group the caller is in.
func (c *Client) RenameGroup(ctx context.Context, group uint64, name string) (*im.GroupReply, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.group.RenameGroup(ctx, &im.RenameGroupRequest{GroupId: group, Name: name})
}

// GroupMembers returns a group the caller is in and its members.
func (c *Client) GroupMembers(ctx context.Context, group uint64) (*im.MemberList, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.group.ListMembers(ctx, &im.ListMembersRequest{GroupId: group})
}

// MyGroups returns the groups the caller is in.
func (c *Client) MyGroups(ctx context.Context) (*im.GroupList, error) {
	ctx, err := c.authed(ctx)
	if err != nil {
		return nil, err
	}
	return c.group.ListMyGroups(ctx, &im.ListMyGroupsRequest{})
}

// SendGroupText sends text to a group, retrying as SendText does.
// clientMsgID "" makes one up.
func (c *Client) SendGroupText(ctx context.Context, group uint64, clientMsgID, text string) (*im.SendReply, error) {
	if clientMsgID == "" {
		clientMsgID = NewClientMsgID()
	}
	req := &im.SendGroupTextRequest{GroupId: group, ClientMsgId: clientMsgID, Text: text}
	return c.retrySend(ctx, func(ctx context.Context) (*im.SendReply, error) { return c.send.SendGroupText(ctx, req) })
}

// SendGroupVoice sends a voice clip to a group, retrying as SendText does.
func (c *Client) SendGroupVoice(ctx context.Context, group uint64, clientMsgID string, voice []byte, durationMs uint32, format string) (*im.SendReply, error) {
	if clientMsgID == "" {
		clientMsgID = NewClientMsgID()
	}
	req := &im.SendGroupVoiceRequest{GroupId: group, ClientMsgId: clientMsgID, Voice: voice, DurationMs: durationMs, Format: format}
	return c.retrySend(ctx, func(ctx context.Context) (*im.SendReply, error) { return c.send.SendGroupVoice(ctx, req) })
}
