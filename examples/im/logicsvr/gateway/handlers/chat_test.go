package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/svrkit/svrkit/examples/im"
	"github.com/svrkit/svrkit/examples/im/imclient"
	"github.com/svrkit/svrkit/examples/im/imtest"
	"github.com/svrkit/svrkit/svrkit/monitor/monitortest"
)

// ScreenshotEnv names a file the web chat test writes its screenshot to
// (the README's picture, examples/im/webchat.png, is made this way);
// without it the screenshot goes to the test's temporary directory.
const ScreenshotEnv = "WEBCHAT_SCREENSHOT"

// TestWebChat runs the real backend under svrkit up and the web chat page
// in headless Chromium: svrkit up prints the page's and the long link's
// addresses; two tabs log in as alice and bob and chat (asserting on the
// DOM of both); an imclient user, carol, chats with alice's tab over her
// own long link and sends a photo, which alice's page shows inline; then
// the gateway is SIGKILLed and the page reconnects on
// its own and shows what carol sent while it was away.
func TestWebChat(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole backend and a browser")
	}
	b := imtest.Start(t)
	gw := b.Instance("gateway")
	page := "http://" + gw.HTTP + "/chat/"
	// up prints its usage lines just after the state file says ready.
	for _, want := range []string{page, "ws://" + gw.Ports["link"] + "/link"} {
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(b.Output(), want) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.Contains(b.Output(), want) {
			t.Errorf("svrkit up did not print %s within 30s:\n%s", want, b.Output())
		}
	}
	addrs, err := imclient.ReadStateFile(b.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, name := range []string{"alice", "bob"} {
		if _, err := imclient.New(addrs).Register(ctx, name, "password-"+name, ""); err != nil {
			t.Fatal(err)
		}
	}
	carol := imclient.New(addrs)
	if _, err := carol.Register(ctx, "carol", "password-carol", "Carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Login(ctx, "carol", "password-carol", "laptop"); err != nil {
		t.Fatal(err)
	}

	browser := monitortest.Browser(t, 1100, 720)
	alice := tab{t, browser, "alice"}
	bob := tab{t, monitortest.NewTab(t, browser), "bob"}
	alice.login(page)
	bob.login(page)

	// alice adds bob on the page and writes; bob's tab shows her as a
	// contact and the message, live.
	alice.do(chromedp.SendKeys(chromedp.CSS("#add-name"), "bob"), chromedp.Click(chromedp.CSS("#add-btn")))
	alice.wait(`document.getElementById("peer-name").textContent === "bob"`)
	alice.say("hello bob, from a browser")
	bob.open("alice")
	bob.waitMessages([]string{"theirs:hello bob, from a browser"})
	bob.say("hi alice, browser here too")
	alice.waitMessages([]string{"mine:hello bob, from a browser", "theirs:hi alice, browser here too"})

	// carol (imclient, on the long link) and alice's tab chat.
	if err := carol.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer carol.Close()
	carolGot := make(chan string, 16)
	go func() {
		_ = carol.Watch(ctx, func(r *im.SyncReply) error {
			for _, it := range r.GetItems() {
				if m := it.GetMessage(); m != nil {
					carolGot <- m.GetText()
				}
			}
			return nil
		})
	}()
	aliceID := alice.userID()
	if _, err := carol.SendText(ctx, aliceID, "c1", "alice, it's carol on imclient"); err != nil {
		t.Fatal(err)
	}
	alice.open("carol")
	alice.waitMessages([]string{"theirs:alice, it's carol on imclient"})
	alice.say("hello carol, from the web page")
	waitText(t, ctx, carolGot, "hello carol, from the web page")

	// carol sends a photo: alice's page shows its thumbnail inline,
	// fetched with her token through the gateway from sendmedia, at the
	// size the message announced; a click opens the full image.
	photo := testPNG(t, 480, 320)
	info, err := carol.Upload(ctx, bytes.NewReader(photo), int64(len(photo)), "image/png", imclient.UploadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.SendImage(ctx, aliceID, "c-photo", info.GetMediaId()); err != nil {
		t.Fatal(err)
	}
	alice.waitMessages([]string{"theirs:alice, it's carol on imclient", "mine:hello carol, from the web page", "theirs:[Image]"})
	img := fmt.Sprintf(`document.querySelector('#messages img[data-media-id=%q]')`, info.GetMediaId())
	alice.wait(fmt.Sprintf(`(() => { const i = %s; return !!i && i.dataset.state === "shown" && i.complete && i.naturalWidth === %d && i.naturalHeight === %d; })()`,
		img, info.GetThumbWidth(), info.GetThumbHeight()))
	alice.do(chromedp.Evaluate[chromedp.Void](`(() => { window.open = (u) => { window.openedMedia = u; }; })()`))
	alice.wait(fmt.Sprintf(`(() => { %s.parentElement.click(); return true; })()`, img))
	alice.wait(`typeof window.openedMedia === "string" && window.openedMedia.startsWith("blob:")`)
	full := `fetch(window.openedMedia).then(r => r.blob()).then(b => b.size)`
	if n, err := chromedp.Run(alice.ctx, chromedp.Evaluate[int](full, chromedp.EvalAwaitPromise)); err != nil || n != len(photo) {
		t.Errorf("the opened image has %d bytes (%v), want the %d uploaded", n, err, len(photo))
	}

	// The gateway only relays: sendmedia still asks for the token.
	res, err := http.Get("http://" + gw.HTTP + im.MediaThumbPath + info.GetMediaId())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"code":"unauthenticated"`) {
		t.Errorf("a thumbnail without a token through the gateway: %s %s, want 401 unauthenticated", res.Status, body)
	}

	// The picture for the README: alice's conversation with carol.
	shot, err := chromedp.Run(alice.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := os.Getenv(ScreenshotEnv)
	if path == "" {
		path = filepath.Join(t.TempDir(), "webchat.png")
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	// A network drop: the gateway dies. The page reconnects on its own
	// (svrkit up restarts the gateway), syncs, and shows what carol sent
	// meanwhile; then it sends again over the new connection.
	before := alice.connects()
	pid, err := b.Kill("gateway")
	if err != nil {
		t.Fatal(err)
	}
	alice.wait(`document.getElementById("status").dataset.state !== "connected"`)
	if _, err := carol.SendText(ctx, aliceID, "c2", "did you get this while you were away?"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitReady(ctx, "gateway", pid, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	alice.wait(fmt.Sprintf(`document.getElementById("status").dataset.state === "connected" && Number(document.getElementById("status").dataset.connects) > %d`, before))
	alice.waitMessages([]string{"theirs:alice, it's carol on imclient", "mine:hello carol, from the web page", "theirs:[Image]", "theirs:did you get this while you were away?"})
	alice.say("yes, after a reconnect")
	waitText(t, ctx, carolGot, "yes, after a reconnect")
}

// tab is one browser tab, logged in as one user.
type tab struct {
	t    *testing.T
	ctx  context.Context
	name string
}

func (b tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s's tab: %v", b.name, err)
	}
}

// wait polls a JavaScript condition, bounded.
func (b tab) wait(cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		b.t.Fatalf("%s's tab: waiting for %s: %v\npage text: %q", b.name, cond, err, b.pageText())
	}
}

func (b tab) login(page string) {
	b.t.Helper()
	b.do(chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#name"), b.name),
		chromedp.SendKeys(chromedp.CSS("#password"), "password-"+b.name),
		chromedp.Click(chromedp.CSS("#login-btn")))
	b.wait(`document.getElementById("status").dataset.state === "connected"`)
}

// open opens the conversation with a contact, once the list has it.
func (b tab) open(name string) {
	b.t.Helper()
	// The list is redrawn whenever a sync or a profile lookup lands, so
	// find and click the entry in one step inside the page: a node found
	// by one DevTools call may be gone by the next.
	b.wait(fmt.Sprintf(`(() => { const li = document.querySelector(%q); if (!li) return false; li.click(); return true; })()`,
		fmt.Sprintf(`#contacts li[data-name=%q]`, name)))
	b.wait(fmt.Sprintf(`document.getElementById("peer-name").textContent === %q`, name))
}

func (b tab) say(text string) {
	b.t.Helper()
	b.do(chromedp.SendKeys(chromedp.CSS("#text"), text), chromedp.Click(chromedp.CSS("#send-btn")))
}

// pageText is what the page shows, for failure messages.
func (b tab) pageText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	return v
}

// messages returns the open conversation as "mine:text" / "theirs:text".
func (b tab) messages() []string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#messages li")).map(li => li.className + ":" + li.querySelector(".text").textContent)`))
	return v
}

// waitMessages waits until the open conversation is exactly want, in
// order: nothing lost, nothing twice.
func (b tab) waitMessages(want []string) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := b.messages()
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s's conversation shows\n%q\nwant\n%q", b.name, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b tab) connects() int {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`Number(document.getElementById("status").dataset.connects)`))
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

func (b tab) userID() uint64 {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`JSON.parse(sessionStorage.getItem("im.session")).userId`))
	if err != nil {
		b.t.Fatal(err)
	}
	var id uint64
	if _, err := fmt.Sscan(v, &id); err != nil || id == 0 {
		b.t.Fatalf("%s's user id %q", b.name, v)
	}
	return id
}

// waitText waits for an imclient user to receive a text.
func waitText(t *testing.T, ctx context.Context, got <-chan string, want string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case s := <-got:
			if s == want {
				return
			}
		case <-timeout:
			t.Fatalf("imclient did not receive %q within 60s", want)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}

// testPNG is a w×h PNG with a gradient, so its thumbnail is a real image.
func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 160, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
