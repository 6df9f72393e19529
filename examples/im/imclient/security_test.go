package imclient_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/examples/im/imtest"
	"github.com/svrkit/svrkit/examples/im/internal/inbox"
	"github.com/svrkit/svrkit/examples/im/internal/session"
	"github.com/svrkit/svrkit/svrkit"
)

// fromAddr returns a client of the backend whose connections come from ip
// (any 127.0.0.0/8 address is this machine's on Linux): the backend
// throttles logins per client address, so each simulated client gets its
// own.
func fromAddr(t *testing.T, be *imtest.Backend, ip string) *imclient.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := imclient.FromStateFile(be.StateFile, imclient.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSecurity runs the IM backend (svrkit up, real processes and sockets)
// and checks the account findings of issue #17, each in its own subtest:
// every one of them failed before the fix.
func TestSecurity(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the IM backend")
	}
	sessionSecret, _ := topologySecrets(t)
	be := imtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	register := func(name, password string) (*imclient.Client, uint64) {
		t.Helper()
		c := fromAddr(t, be, "127.0.0.2")
		return c, must[uint64](t, "register "+name)(c.Register(ctx, name, password, ""))
	}

	// Finding: 26 wrong passwords a second against one account, no
	// lockout. Now 5 failures are free, then the account waits; the same
	// for a name that does not exist, so throttling reveals nothing.
	t.Run("per-account throttle", func(t *testing.T) {
		owner, _ := register("victim", "victim-password")
		must[imclient.Session](t, "the owner's device logs in")(owner.Login(ctx, "victim", "victim-password", "phone"))
		for _, name := range []string{"victim", "nosuchuser"} {
			attacker := fromAddr(t, be, "127.0.0.21")
			guess := func() error {
				_, err := attacker.Login(ctx, name, "guess-password", "")
				return err
			}
			for i := range 5 {
				wantCode(t, fmt.Sprintf("%s: wrong password %d", name, i+1), guess(), svrkit.Unauthenticated, "wrong name or password")
			}
			// Then the account waits 1s, 2s, 4s, ... after each failure:
			// refused until then (the tarpit paces the retries).
			for _, limit := range []int{1, 2, 4} {
				err := guess()
				wantCode(t, name+": a guess right after a failure", err, svrkit.ResourceExhausted, "too many failed logins; try again in ")
				var secs int
				if _, serr := fmt.Sscanf(err.(*svrkit.Error).Message(), "too many failed logins; try again in %d s", &secs); serr != nil || secs < 1 || secs > limit {
					t.Fatalf("%s: %q, want a wait of 1 to %d s", name, err.(*svrkit.Error).Message(), limit)
				}
				if limit == 4 {
					break
				}
				for deadline := time.Now().Add(30 * time.Second); ; {
					err := guess()
					if svrkit.CodeOf(err) == svrkit.Unauthenticated {
						break // admitted again, and failed again
					}
					wantCode(t, name+": waiting out the delay", err, svrkit.ResourceExhausted, "too many failed logins")
					if time.Now().After(deadline) {
						t.Fatalf("%s: still refused 30s after a failure", name)
					}
				}
			}
			// From another address too: it is the account that waits.
			_, err := fromAddr(t, be, "127.0.0.22").Login(ctx, name, "guess-password", "")
			wantCode(t, name+" from another address", err, svrkit.ResourceExhausted, "too many failed logins")
			if name != "victim" {
				continue
			}
			// A first login from a new device is refused until the attack
			// ends, the right password or not; the owner's device, with
			// its cookie, is not locked out.
			_, err = fromAddr(t, be, "127.0.0.23").Login(ctx, "victim", "victim-password", "new-phone")
			wantCode(t, "a new device during the attack", err, svrkit.ResourceExhausted, "")
			s := must[imclient.Session](t, "the owner's device during the attack")(owner.Login(ctx, "victim", "victim-password", "phone"))
			if s.DeviceCookie == "" {
				t.Fatal("login answered no device cookie")
			}
		}
	})

	// Finding: no per-client throttle. An address that keeps failing on
	// ever new names is stopped after 20.
	t.Run("per-source throttle", func(t *testing.T) {
		sprayer := fromAddr(t, be, "127.0.0.24")
		var codes []svrkit.Code
		for i := range 30 {
			_, err := sprayer.Login(ctx, fmt.Sprintf("spray%d", i), "guess-password", "")
			codes = append(codes, svrkit.CodeOf(err))
		}
		// 20 free failures, then refusals, with at most a guess a second
		// (the delay doubles) as the tarpit paces the rest.
		admitted := 0
		for i, c := range codes {
			switch {
			case i < 20 && c != svrkit.Unauthenticated, i == 20 && c != svrkit.ResourceExhausted:
				t.Fatalf("guess %d at a new name answered %v: %v", i+1, c, codes)
			case i > 20 && c == svrkit.Unauthenticated:
				admitted++
			}
		}
		if admitted > 2 {
			t.Fatalf("%d of 9 guesses admitted after the address was throttled: %v", admitted, codes)
		}
	})

	// Finding: 48 connections hammering login filled the concurrency cap
	// and bob's correct login got 429 three times out of three.
	t.Run("a hammer does not lock others out", func(t *testing.T) {
		_, _ = register("target", "target-password")
		var legit []string
		for i := range 3 {
			name := fmt.Sprintf("legit%d", i)
			register(name, name+"-password")
			legit = append(legit, name)
		}
		actx, stopAttack := context.WithCancel(ctx)
		var attacks, refusals atomic.Int64
		var attackers sync.WaitGroup
		hammer := fromAddr(t, be, "127.0.0.31")
		for i := range 48 {
			attackers.Add(1)
			go func() {
				defer attackers.Done()
				for n := 0; actx.Err() == nil; n++ {
					name := "target"
					if n%2 == 1 {
						name = fmt.Sprintf("h%d-%d", i, n)
					}
					_, err := hammer.Login(actx, name, "guess-password", "")
					attacks.Add(1)
					if svrkit.CodeOf(err) == svrkit.ResourceExhausted {
						refusals.Add(1)
					}
				}
			}()
		}
		defer func() { stopAttack(); attackers.Wait() }()
		// Wait until the hammer is throttled, then log in as the others,
		// each from its own address, a fresh device every time.
		for refusals.Load() < 100 {
			if ctx.Err() != nil {
				t.Fatal("the hammer was never throttled")
			}
			time.Sleep(10 * time.Millisecond)
		}
		var lat []time.Duration
		for round := range 5 {
			for i, name := range legit {
				c := fromAddr(t, be, fmt.Sprintf("127.0.0.%d", 40+i))
				lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				start := time.Now()
				_, err := c.Login(lctx, name, name+"-password", fmt.Sprintf("d%d", round))
				cancel()
				if err != nil {
					t.Fatalf("%s's login during the attack: %v", name, err)
				}
				lat = append(lat, time.Since(start))
			}
		}
		stopAttack()
		attackers.Wait()
		slices.Sort(lat)
		p90 := lat[len(lat)*9/10]
		t.Logf("legitimate logins during the attack: %d, p50 %v, p90 %v, max %v; attacker: %d attempts, %d refused",
			len(lat), lat[len(lat)/2], p90, lat[len(lat)-1], attacks.Load(), refusals.Load())
		// The goal is 1s (tools/loginbench measures it); a loaded test
		// machine gets twice that.
		if p90 > 2*time.Second {
			t.Fatalf("p90 of legitimate logins %v during the attack, want under 2s", p90)
		}
	})

	// Finding: no logout, no revocation, no password change. A revoked
	// token is refused by all four client-facing Logicsvrs as soon as
	// Logout answers.
	everywhere := func(t *testing.T, c *imclient.Client, to uint64, want error) {
		t.Helper()
		check := func(what string, err error) {
			t.Helper()
			if want == nil && err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if want != nil {
				wantCode(t, what, err, svrkit.Unauthenticated, want.(*svrkit.Error).Message())
			}
		}
		_, err := c.Profile(ctx, 0)
		check("account", err)
		_, err = c.Contacts(ctx)
		check("contact", err)
		_, err = c.SendText(ctx, to, "", "hi")
		check("send", err)
		_, err = c.Sync(ctx, 0)
		check("sync", err)
	}
	t.Run("logout revokes", func(t *testing.T) {
		phone, id := register("leaver", "leaver-password")
		laptop := fromAddr(t, be, "127.0.0.2")
		must[imclient.Session](t, "phone")(phone.Login(ctx, "leaver", "leaver-password", "phone"))
		must[imclient.Session](t, "laptop")(laptop.Login(ctx, "leaver", "leaver-password", "laptop"))
		old := phone.Session()
		everywhere(t, phone, id, nil)
		if err := phone.Logout(ctx, false); err != nil {
			t.Fatal(err)
		}
		phone.SetSession(old)
		everywhere(t, phone, id, session.ErrRevoked)
		everywhere(t, laptop, id, nil) // another device's session goes on
		must[imclient.Session](t, "phone again")(phone.Login(ctx, "leaver", "leaver-password", "phone"))
		everywhere(t, phone, id, nil)
		if err := laptop.Logout(ctx, true); err != nil {
			t.Fatal(err)
		}
		everywhere(t, phone, id, session.ErrRevoked)
	})

	t.Run("password change revokes", func(t *testing.T) {
		phone, id := register("changer", "changer-password")
		tablet := fromAddr(t, be, "127.0.0.2")
		must[imclient.Session](t, "phone")(phone.Login(ctx, "changer", "changer-password", "phone"))
		must[imclient.Session](t, "tablet")(tablet.Login(ctx, "changer", "changer-password", "tablet"))
		_, err := phone.ChangePassword(ctx, "not-the-password", "changer-new-password")
		wantCode(t, "wrong current password", err, svrkit.Unauthenticated, "wrong password")
		_, err = phone.ChangePassword(ctx, "changer-password", "short")
		wantCode(t, "short new password", err, svrkit.InvalidArgument, "new_password must be 8 to 128 bytes")
		must[imclient.Session](t, "change")(phone.ChangePassword(ctx, "changer-password", "changer-new-password"))
		everywhere(t, phone, id, nil) // the new session of the device that changed it
		everywhere(t, tablet, id, session.ErrRevoked)
		_, err = fromAddr(t, be, "127.0.0.25").Login(ctx, "changer", "changer-password", "")
		wantCode(t, "the old password", err, svrkit.Unauthenticated, "wrong name or password")
		must[imclient.Session](t, "the new password")(tablet.Login(ctx, "changer", "changer-new-password", "tablet"))
		everywhere(t, tablet, id, nil)
	})

	// Finding: the development secret is accepted with any expiry, and a
	// token with a newline in its base64 still verifies.
	t.Run("token lifetime and spelling", func(t *testing.T) {
		c, id := register("minted", "minted-password")
		s := must[imclient.Session](t, "login")(c.Login(ctx, "minted", "minted-password", "phone"))
		signer, err := session.NewSigner(sessionSecret, 100*365*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tenYears, _ := signer.Sign(session.Claims{UserID: id, DeviceID: "phone", IssuedAt: time.Now(), Expires: time.Now().AddDate(10, 0, 0)})
		c.SetSession(imclient.Session{UserID: id, Token: tenYears})
		everywhere(t, c, id, session.ErrInvalid)

		// HTTP clients refuse a newline in a header; binary RPC carries it
		// (called as an operator: the RPC port admits only services).
		account := im.NewAccountClient(be.RPC("account", "operator"))
		as := func(tok string) context.Context {
			return svrkit.WithOutgoingMetadata(ctx, svrkit.Metadata{session.MetadataKey: session.Header(tok)})
		}
		must[*im.Profile](t, "the genuine token over RPC")(account.GetProfile(as(s.Token), &im.GetProfileRequest{}))
		_, err = account.GetProfile(as(s.Token[:20]+"\n"+s.Token[20:]), &im.GetProfileRequest{})
		wantCode(t, "a newline inside the token", err, svrkit.Unauthenticated, "invalid session token")
	})

	// Finding: Login hashed passwords of any length.
	t.Run("long password refused before hashing", func(t *testing.T) {
		c := fromAddr(t, be, "127.0.0.26")
		start := time.Now()
		_, err := c.Login(ctx, "minted", strings.Repeat("p", 1<<20), "")
		wantCode(t, "a 1 MiB password", err, svrkit.InvalidArgument, "password must be at most 128 bytes")
		t.Logf("refused in %v", time.Since(start))
		_, err = c.Login(ctx, "minted", strings.Repeat("p", 129), "")
		wantCode(t, "a 129-byte password", err, svrkit.InvalidArgument, "password must be at most 128 bytes")
	})

	// Finding: sequential user ids let any logged-in user list every
	// profile by counting.
	t.Run("user ids are not a sequence", func(t *testing.T) {
		c, first := register("counter0", "counter-password")
		must[imclient.Session](t, "login")(c.Login(ctx, "counter0", "counter-password", ""))
		ids := []uint64{first}
		for i := 1; i < 4; i++ {
			_, id := register(fmt.Sprintf("counter%d", i), "counter-password")
			ids = append(ids, id)
		}
		for i, id := range ids {
			if id < 1<<32 {
				t.Fatalf("user id %d: below 2^32, where sequential ids live", id)
			}
			for _, near := range []uint64{id - 1, id + 1, id + 2} {
				if _, err := c.Profile(ctx, near); svrkit.CodeOf(err) != svrkit.NotFound {
					t.Fatalf("profile of %d, next to user %d's id: %v; want not_found", near, i, err)
				}
			}
		}
		// Documented: another user's public profile, by id.
		if p := must[*im.Profile](t, "another user's profile")(c.Profile(ctx, ids[1])); p.GetName() != "counter1" {
			t.Fatalf("profile %v", p)
		}
	})

	// Finding: the SyncKey MAC did not cover the device, and a key showed
	// its versions.
	t.Run("SyncKeys are bound to the device and opaque", func(t *testing.T) {
		phone, id := register("syncer", "syncer-password")
		laptop := fromAddr(t, be, "127.0.0.2")
		must[imclient.Session](t, "phone")(phone.Login(ctx, "syncer", "syncer-password", "phone"))
		must[imclient.Session](t, "laptop")(laptop.Login(ctx, "syncer", "syncer-password", "laptop"))
		for i := range 3 {
			must[*im.SendReply](t, "note to self")(phone.SendText(ctx, id, fmt.Sprint(i), "note"))
		}
		r := must[*im.SyncReply](t, "phone syncs")(phone.Sync(ctx, 0))
		key := r.GetSyncKey()
		var last uint64
		for _, it := range r.GetItems() {
			if it.GetType() == im.SyncType_SYNC_TYPE_MESSAGES {
				last = it.GetVersion()
			}
		}
		if last == 0 {
			t.Fatalf("the phone synced no message: %v", r)
		}
		// The versions' encoding (the type bitmap, then a uvarint) is
		// not in the key. The user has only messages to sync.
		clear := binary.AppendUvarint([]byte{0, 1 << inbox.Messages}, last)
		if bytes.Contains(key, clear) {
			t.Fatalf("key %x shows the messages version %d in clear (%x)", key, last, clear)
		}
		laptop.SetSyncKey(key)
		_, err := laptop.Sync(ctx, 0)
		wantCode(t, "the phone's key on the laptop", err, svrkit.InvalidArgument, "")
	})
}
