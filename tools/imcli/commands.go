package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/svrkit"
	"github.com/svrkit/svrkit/tools/internal/jsonfile"
)

// state is what imcli keeps between invocations for one user.
type state struct {
	Session imclient.Session `json:"session"`
	// SyncKey is the device's key, saved together with the printing of
	// the items it acknowledges.
	SyncKey []byte `json:"sync_key,omitempty"`
	// Names maps user ids to login names seen in contacts and messages,
	// to print names instead of numbers.
	Names map[uint64]string `json:"names,omitempty"`
	// Uploads are the uploads started and not completed, by the file's
	// SHA-256 and size: sending the same file again resumes its upload.
	Uploads map[string]string `json:"uploads,omitempty"`
}

// loadState reads the state file for name ("" means -as/-state), returning
// its path. A missing file is an empty state.
func (c *cli) loadState(name string) (*state, string, error) {
	path := c.statePath
	if path == "" {
		if name == "" {
			name = c.as
		}
		if name == "" {
			return nil, "", usagef("whose login? pass -as NAME (or set IMCLI_USER), or -state FILE")
		}
		var err error
		if path, err = defaultStatePath(c.getenv, name); err != nil {
			return nil, "", err
		}
	}
	st := &state{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, "", err
	default:
		if err := json.Unmarshal(b, st); err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
	}
	if st.Names == nil {
		st.Names = map[uint64]string{}
	}
	return st, path, nil
}

// save writes the state file atomically (write, rename), mode 0600: it
// holds a session token.
func (st *state) save(path string) error { return jsonfile.Write(path, st, 0o600) }

// client returns a Client of the backend in -up's state file, with st's
// login and SyncKey.
func (c *cli) client(st *state) (*imclient.Client, error) {
	cl, err := imclient.FromStateFile(c.upPath)
	if err != nil {
		return nil, err
	}
	if st != nil {
		cl.SetSession(st.Session)
		cl.SetSyncKey(st.SyncKey)
	}
	return cl, nil
}

// loggedIn loads the current user's state and a client with its login.
func (c *cli) loggedIn() (*state, string, *imclient.Client, error) {
	st, path, err := c.loadState("")
	if err != nil {
		return nil, "", nil, err
	}
	if st.Session.Token == "" {
		return nil, "", nil, svrkit.NewError(svrkit.Unauthenticated, "not logged in")
	}
	cl, err := c.client(st)
	return st, path, cl, err
}

func (c *cli) password(p string) (string, error) {
	if p != "" {
		return p, nil
	}
	return c.readPassword(bufio.NewReader(c.stdin), "IMCLI_PASSWORD", "password: ")
}

// readPassword returns $env, else a line of in after prompting.
func (c *cli) readPassword(in *bufio.Reader, env, prompt string) (string, error) {
	if p := c.getenv(env); p != "" {
		return p, nil
	}
	fmt.Fprint(c.stderr, prompt)
	line, err := in.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err != nil {
			flagName := "-password"
			if env != "IMCLI_PASSWORD" {
				flagName = "-new"
			}
			return "", usagef("no password: pass %s, set %s or type it", flagName, env)
		}
		return "", usagef("empty password")
	}
	return line, nil
}

func (c *cli) register(args []string) error {
	var password, nick, device string
	pos, err := subFlags("register", args, func(fs *flag.FlagSet) {
		fs.StringVar(&password, "password", "", "")
		fs.StringVar(&nick, "nick", "", "")
		fs.StringVar(&device, "device", "", "")
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: register NAME [-password P] [-nick NICK] [-device D]")
	}
	if password, err = c.password(password); err != nil {
		return err
	}
	cl, err := c.client(nil)
	if err != nil {
		return err
	}
	id, err := cl.Register(c.ctx, pos[0], password, nick)
	if err != nil {
		return err
	}
	if !c.json {
		c.printf("registered %s (user %d)", pos[0], id)
	}
	return c.doLogin(cl, pos[0], password, device)
}

func (c *cli) login(args []string) error {
	var password, device string
	pos, err := subFlags("login", args, func(fs *flag.FlagSet) {
		fs.StringVar(&password, "password", "", "")
		fs.StringVar(&device, "device", "", "")
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("usage: login NAME [-password P] [-device D]")
	}
	if password, err = c.password(password); err != nil {
		return err
	}
	cl, err := c.client(nil)
	if err != nil {
		return err
	}
	return c.doLogin(cl, pos[0], password, device)
}

func (c *cli) doLogin(cl *imclient.Client, name, password, device string) error {
	st, path, err := c.loadState(name)
	if err != nil {
		return err
	}
	// The device cookie of this file's last login to the same account
	// goes along, so that login is throttled on its own.
	cl.SetSession(st.Session)
	s, err := cl.Login(c.ctx, name, password, device)
	if err != nil {
		return err
	}
	// Another user or device in this file: its SyncKey is not ours.
	if st.Session.UserID != s.UserID || st.Session.DeviceID != s.DeviceID {
		st.SyncKey = nil
	}
	st.Session = s
	st.Names[s.UserID] = name
	if err := st.save(path); err != nil {
		return err
	}
	if c.json {
		c.printJSON(map[string]any{"user_id": s.UserID, "name": name, "device_id": s.DeviceID, "expires_unix": s.ExpiresUnix, "state": path})
		return nil
	}
	c.printf("logged in as %s (user %d) on device %q until %s; state in %s",
		name, s.UserID, s.DeviceID, time.Unix(s.ExpiresUnix, 0).Format(time.DateTime), path)
	if c.as == "" && c.statePath == "" {
		c.printf("use it with: imcli -as %s COMMAND   (or export IMCLI_USER=%s)", name, name)
	}
	return nil
}

func (c *cli) logout(args []string) error {
	var all bool
	if _, err := subFlags("logout", args, func(fs *flag.FlagSet) { fs.BoolVar(&all, "all", false, "") }); err != nil {
		return err
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	// A token the server already refuses (expired, revoked) is as good as
	// logged out: forget it all the same.
	if err := cl.Logout(c.ctx, all); err != nil && svrkit.CodeOf(err) != svrkit.Unauthenticated {
		return err
	}
	// The SyncKey and the device cookie stay for this device's next login.
	st.Session.Token, st.Session.ExpiresUnix = "", 0
	if err := st.save(path); err != nil {
		return err
	}
	if c.json {
		c.printJSON(map[string]any{"logged_out": true, "all_devices": all})
		return nil
	}
	if all {
		c.printf("logged out on every device: no token of %s works any more", st.Session.Name)
	} else {
		c.printf("logged out: this device's token no longer works")
	}
	return nil
}

func (c *cli) passwd(args []string) error {
	var password, newPassword string
	pos, err := subFlags("passwd", args, func(fs *flag.FlagSet) {
		fs.StringVar(&password, "password", "", "")
		fs.StringVar(&newPassword, "new", "", "")
	})
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("usage: passwd [-password P] [-new NEW]")
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	in := bufio.NewReader(c.stdin)
	if password == "" {
		if password, err = c.readPassword(in, "IMCLI_PASSWORD", "current password: "); err != nil {
			return err
		}
	}
	if newPassword == "" {
		if newPassword, err = c.readPassword(in, "IMCLI_NEW_PASSWORD", "new password: "); err != nil {
			return err
		}
	}
	s, err := cl.ChangePassword(c.ctx, password, newPassword)
	if err != nil {
		return err
	}
	st.Session = s
	if err := st.save(path); err != nil {
		return err
	}
	if c.json {
		c.printJSON(map[string]any{"user_id": s.UserID, "device_id": s.DeviceID, "expires_unix": s.ExpiresUnix})
		return nil
	}
	c.printf("password changed; every other session of %s has ended, this device stays logged in until %s",
		s.Name, time.Unix(s.ExpiresUnix, 0).Format(time.DateTime))
	return nil
}

func (c *cli) profile(args []string) error {
	if len(args) > 1 {
		return usagef("usage: whoami | profile NAME|ID")
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	var id uint64
	if len(args) == 1 {
		if id, err = c.resolve(cl, st, args[0]); err != nil {
			return err
		}
	}
	p, err := cl.Profile(c.ctx, id)
	if err != nil {
		return err
	}
	st.Names[p.GetUserId()] = p.GetName()
	_ = st.save(path)
	if c.json {
		c.printProto(p)
		return nil
	}
	c.printf("%s (user %d), nickname %q, registered %s", p.GetName(), p.GetUserId(), p.GetNickname(),
		time.Unix(p.GetRegisteredUnix(), 0).Format(time.DateTime))
	return nil
}

func (c *cli) setnick(args []string) error {
	if len(args) == 0 {
		return usagef("usage: setnick NICKNAME")
	}
	_, _, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	p, err := cl.SetProfile(c.ctx, strings.Join(args, " "))
	if err != nil {
		return err
	}
	if c.json {
		c.printProto(p)
		return nil
	}
	c.printf("nickname is now %q", p.GetNickname())
	return nil
}

func (c *cli) add(args []string) error {
	if len(args) != 1 {
		return usagef("usage: add NAME")
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	r, err := cl.AddContact(c.ctx, args[0])
	if err != nil {
		return err
	}
	st.Names[r.GetContact().GetUserId()] = r.GetContact().GetName()
	_ = st.save(path)
	if c.json {
		c.printProto(r)
		return nil
	}
	if !r.GetChanged() {
		c.printf("%s is already a contact (list version %d)", args[0], r.GetVersion())
		return nil
	}
	c.printf("added %s (user %d); contact list version %d", r.GetContact().GetName(), r.GetContact().GetUserId(), r.GetVersion())
	return nil
}

func (c *cli) remove(args []string) error {
	if len(args) != 1 {
		return usagef("usage: remove NAME")
	}
	st, _, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	id, err := c.resolve(cl, st, args[0])
	if err != nil {
		return err
	}
	r, err := cl.RemoveContact(c.ctx, id)
	if err != nil {
		return err
	}
	if c.json {
		c.printProto(r)
		return nil
	}
	if !r.GetChanged() {
		c.printf("%s was not a contact", args[0])
		return nil
	}
	c.printf("removed %s; contact list version %d", args[0], r.GetVersion())
	return nil
}

func (c *cli) contacts(args []string) error {
	if len(args) != 0 {
		return usagef("usage: contacts")
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	l, err := cl.Contacts(c.ctx)
	if err != nil {
		return err
	}
	for _, e := range l.GetContacts() {
		st.Names[e.GetUserId()] = e.GetName()
	}
	_ = st.save(path)
	if c.json {
		c.printProto(l)
		return nil
	}
	if len(l.GetContacts()) == 0 {
		c.printf("no contacts yet (add one: imcli add NAME)")
	}
	for _, e := range l.GetContacts() {
		c.printf("%-20s user %-6d nickname %q", e.GetName(), e.GetUserId(), e.GetNickname())
	}
	if !c.json {
		c.printf("(list version %d)", l.GetVersion())
	}
	return nil
}

// resolve turns NAME or a user id into a user id: a number is an id;
// a name is looked up in the contacts (the backend has no other name
// lookup for a client: you message people you added).
func (c *cli) resolve(cl *imclient.Client, st *state, who string) (uint64, error) {
	if id, err := strconv.ParseUint(who, 10, 64); err == nil {
		return id, nil
	}
	if who == st.Session.Name {
		return st.Session.UserID, nil
	}
	l, err := cl.Contacts(c.ctx)
	if err != nil {
		return 0, err
	}
	for _, e := range l.GetContacts() {
		if e.GetName() == who {
			return e.GetUserId(), nil
		}
	}
	return 0, svrkit.Errorf(svrkit.NotFound, "%s is not one of your contacts (add them first: imcli add %s)", who, who)
}

func (c *cli) send(args []string) error {
	if len(args) < 2 {
		return usagef("usage: send NAME|ID TEXT...")
	}
	st, _, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	to, err := c.resolve(cl, st, args[0])
	if err != nil {
		return err
	}
	text := strings.Join(args[1:], " ")
	id := imclient.NewClientMsgID()
	r, err := cl.SendText(c.ctx, to, id, text)
	if err != nil {
		return err
	}
	if c.json {
		c.printJSON(map[string]any{"to_user_id": to, "client_msg_id": id, "sent_unix_ms": r.GetSentUnixMs(), "duplicate": r.GetDuplicate()})
		return nil
	}
	c.printf("sent to %s at %s", args[0], time.UnixMilli(r.GetSentUnixMs()).Format(time.TimeOnly))
	return nil
}

func (c *cli) sync(args []string) error {
	var reset bool
	if _, err := subFlags("sync", args, func(fs *flag.FlagSet) { fs.BoolVar(&reset, "reset", false, "") }); err != nil {
		return err
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	if reset {
		st.SyncKey = nil
		cl.SetSyncKey(nil)
	}
	n, err := c.syncOnce(cl, st, path)
	if err != nil {
		return err
	}
	if n == 0 && !c.json {
		c.printf("nothing new")
	}
	return nil
}

// syncOnce syncs until nothing more is waiting, printing every item and
// saving the SyncKey after each round: an item is printed before the key
// that acknowledges it is stored, so a crash prints it again rather than
// never.
func (c *cli) syncOnce(cl *imclient.Client, st *state, path string) (int, error) {
	n := 0
	for {
		r, err := cl.Sync(c.ctx, 0)
		if err != nil {
			if code := svrkit.CodeOf(err); code == svrkit.InvalidArgument || code == svrkit.OutOfRange {
				return n, fmt.Errorf("%w (the stored SyncKey was refused; imcli sync -reset starts over)", err)
			}
			return n, err
		}
		n += len(r.GetItems())
		if err := c.printReply(cl, st, path, r); err != nil {
			return n, err
		}
		if !r.GetContinueFlag() {
			return n, nil
		}
	}
}

// watch prints what is new as it comes. Over the gateway's long link it is
// driven by push: it syncs when the gateway says something changed (and
// after every reconnection), and does nothing in between. With -every (or
// a backend without a gateway) it polls instead.
func (c *cli) watch(args []string) error {
	var every time.Duration
	if _, err := subFlags("watch", args, func(fs *flag.FlagSet) { fs.DurationVar(&every, "every", 0, "") }); err != nil {
		return err
	}
	if every < 0 {
		return usagef("watch: -every must be positive")
	}
	st, path, cl, err := c.loggedIn()
	if err != nil {
		return err
	}
	if every == 0 {
		err := cl.Connect(c.ctx)
		switch {
		case err == nil:
			defer cl.Close()
			if !c.json {
				c.printf("watching as %s over the long link (Ctrl-C to stop)", st.Session.Name)
			}
			err = cl.Watch(c.ctx, func(r *im.SyncReply) error { return c.printReply(cl, st, path, r) })
			if c.ctx.Err() != nil {
				return nil
			}
			return err
		case svrkit.CodeOf(err) == svrkit.FailedPrecondition:
			every = time.Second // no gateway in this backend: poll
		default:
			return err
		}
	}
	if !c.json {
		c.printf("watching as %s, syncing every %v (Ctrl-C to stop)", st.Session.Name, every)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := c.syncOnce(cl, st, path); err != nil {
			if c.ctx.Err() != nil {
				return nil
			}
			// A restarting service is not the end of watching.
			if !imclient.Retryable(err) {
				return err
			}
			fmt.Fprintf(c.stderr, "imcli: %v; retrying\n", err)
		}
		select {
		case <-c.ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// printReply prints one sync answer's items and then saves its key: an
// item is printed before the key that acknowledges it is stored, so a crash
// prints it again rather than never.
func (c *cli) printReply(cl *imclient.Client, st *state, path string, r *im.SyncReply) error {
	if r.GetGap() && !c.json {
		c.printf("(some history was trimmed while this device was away)")
	}
	for _, it := range r.GetItems() {
		c.printItem(cl, st, it)
	}
	st.SyncKey = r.GetSyncKey()
	return st.save(path)
}

// name returns a user's login name, asking the backend once for a user
// not seen yet.
func (c *cli) name(cl *imclient.Client, st *state, id uint64) string {
	if id == st.Session.UserID {
		return "you"
	}
	if n, ok := st.Names[id]; ok {
		return n
	}
	if p, err := cl.Profile(c.ctx, id); err == nil {
		st.Names[id] = p.GetName()
		return p.GetName()
	}
	return "user " + strconv.FormatUint(id, 10)
}

func (c *cli) printItem(cl *imclient.Client, st *state, it *im.SyncItem) {
	if c.json {
		c.printProto(it)
		return
	}
	at := time.UnixMilli(it.GetAtUnixMs()).Format(time.TimeOnly)
	switch x := it.GetItem().(type) {
	case *im.SyncItem_Message:
		m := x.Message
		from, to := c.name(cl, st, m.GetFromUserId()), ""
		if g := m.GetGroupId(); g != 0 {
			st.Names[g] = m.GetGroupName()
			to = "group " + m.GetGroupName()
		} else {
			to = c.name(cl, st, m.GetToUserId())
		}
		if t := m.GetSentUnixMs(); t != 0 {
			at = time.UnixMilli(t).Format(time.TimeOnly)
		}
		body := m.GetText()
		switch m.GetType() {
		case im.MessageType_MESSAGE_TYPE_VOICE:
			body = fmt.Sprintf("(voice: %.1fs %s, %d bytes)", float64(m.GetVoiceDurationMs())/1000, m.GetVoiceFormat(), len(m.GetVoice()))
		case im.MessageType_MESSAGE_TYPE_IMAGE, im.MessageType_MESSAGE_TYPE_VIDEO:
			body = mediaLine(m)
		}
		c.printf("[%s] %s → %s: %s", at, from, to, printable(body))
	case *im.SyncItem_Contact:
		e := x.Contact.GetContact()
		st.Names[e.GetUserId()] = e.GetName()
		verb := "added"
		if x.Contact.GetRemoved() {
			verb = "removed"
		}
		c.printf("[%s] contact %s: %s (user %d)", at, verb, e.GetName(), e.GetUserId())
	case *im.SyncItem_Profile:
		c.printf("[%s] profile: %s is now %q", at, x.Profile.GetName(), x.Profile.GetNickname())
	case *im.SyncItem_Group:
		c.printGroupChange(cl, st, at, x.Group)
	default:
		c.printf("[%s] %v item, version %d", at, it.GetType(), it.GetVersion())
	}
}

// printable keeps a message from driving the terminal: control characters
// (escape sequences) are shown quoted.
func printable(s string) string {
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}

func (c *cli) printProto(m proto.Message) {
	b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	fmt.Fprintln(c.stdout, string(b))
}

func (c *cli) printError(err error) {
	e := svrkit.AsError(err)
	code := e.Code().String()
	msg := trimCode(err.Error(), code)
	if c.json {
		b, _ := json.Marshal(map[string]string{"code": code, "message": msg})
		fmt.Fprintln(c.stderr, string(b))
		return
	}
	if e.Code() == svrkit.Unknown {
		fmt.Fprintf(c.stderr, "imcli: %s\n", msg)
		return
	}
	fmt.Fprintf(c.stderr, "imcli: %s: %s%s\n", code, msg, hint(code))
}
