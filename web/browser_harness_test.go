package web_test

// A small harness for driving the meeting page in real chromium processes.
// Each simulated person gets a browser process of their own, with a fresh
// profile, so that nothing (cookies, permissions, caches) is shared between
// them, as between two people's computers.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath returns the browser to test with: $HUDDLE_CHROMIUM, else
// Debian's /usr/bin/chromium. A missing browser fails the test rather than
// skipping it, so CI cannot go green without ever running a browser.
func chromiumPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv("HUDDLE_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("browser tests need chromium at %s (set HUDDLE_CHROMIUM to use another): %v; on Debian: apt-get install -y chromium", path, err)
	}
	return path
}

// browserFlags: headless, a fake camera and microphone that need no
// permission prompt, and WebRTC allowed to use loopback addresses (without
// --allow-loopback-in-peer-connection a host with only 127.0.0.1 never
// connects ICE). All traffic stays on 127.0.0.1.
func browserFlags(execPath, userDataDir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.UserDataDir(userDataDir),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// A hidden or occluded headless page must keep decoding video and
		// running timers at full speed, or frame counts stall.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 800),
	}
}

// browser is one person's chromium with one tab.
type browser struct {
	t    testing.TB
	name string
	ctx  context.Context // the tab; lives until the test ends

	mu   sync.Mutex
	logs []string // console calls, log entries and exceptions, in order
}

// newBrowser starts a chromium process with its own profile and opens a tab.
// The process stops when the test ends.
// Extra options (flags) go after the defaults and override them.
func newBrowser(t testing.TB, name string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	b := &browser{t: t, name: name}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(browserFlags(chromiumPath(t), t.TempDir()), extra...)...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithListener(b.record))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first Run starts the browser and binds its life to ctx, so it must
	// run on a context without a deadline (chromedp v0.23); timeouts go on
	// contexts derived after it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: starting chromium: %v", name, err)
	}
	b.ctx = ctx
	return b
}

// record keeps what the page printed, to show when a test fails.
func (b *browser) record(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		parts := make([]string, 0, len(ev.Args))
		for _, a := range ev.Args {
			parts = append(parts, remoteObjectText(a))
		}
		line = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		line = fmt.Sprintf("exception: %s (%s:%d:%d)", text, d.URL, d.LineNumber+1, d.ColumnNumber+1)
	case *log.EventEntryAdded:
		e := ev.Entry
		line = fmt.Sprintf("log.%s [%s]: %s %s", e.Level, e.Source, e.Text, e.URL)
	default:
		return
	}
	b.mu.Lock()
	b.logs = append(b.logs, time.Now().Format("15:04:05.000 ")+line)
	b.mu.Unlock()
}

func remoteObjectText(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	if len(o.Value) > 0 {
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
		return string(o.Value)
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.Type)
}

// Logs returns what the page printed so far.
func (b *browser) Logs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.logs...)
}

// problems returns console errors, warnings, failed loads and exceptions.
func (b *browser) problems() []string {
	var out []string
	for _, l := range b.Logs() {
		s := l[len("15:04:05.000 "):]
		if strings.HasPrefix(s, "exception:") || strings.HasPrefix(s, "console.error") ||
			strings.HasPrefix(s, "console.warning") || strings.HasPrefix(s, "log.error") ||
			strings.HasPrefix(s, "log.warning") {
			out = append(out, l)
		}
	}
	return out
}

// dumpLogsOnFailure prints the page's log if the test failed, when the test
// ends. Register it right after newBrowser.
func (b *browser) dumpLogsOnFailure() {
	b.t.Cleanup(func() {
		if !b.t.Failed() {
			return
		}
		b.t.Logf("--- %s: browser log ---", b.name)
		for _, l := range b.Logs() {
			b.t.Logf("%s: %s", b.name, l)
		}
	})
}

// do runs actions with a deadline.
func (b *browser) do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// addScript has every page b opens from now on run js before its own
// scripts (a test's hooks into the page).
func (b *browser) addScript(js string) {
	b.t.Helper()
	b.mustDo(10*time.Second, "add a script to new pages", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js})
		return err
	}))
}

// mustDo runs actions and fails the test on error.
func (b *browser) mustDo(timeout time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := b.do(timeout, actions...); err != nil {
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
}

// clickRendered clicks the element sel names in a part of the page that
// re-renders on the server's updates (the documents list): chromedp finds
// a node and then clicks it, and when the page has replaced the node in
// between the click fails with "Could not find node"; then it finds the
// new one and clicks again. Other errors fail the test at once.
func (b *browser) clickRendered(timeout time.Duration, what, sel string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := b.do(time.Until(deadline), chromedp.Click(sel))
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "Could not find node") || time.Now().After(deadline) {
			b.t.Fatalf("%s: %s: %v", b.name, what, err)
		}
	}
}

// clickUntil clicks sel until the page says done (a JavaScript expression),
// for a toggle whose click may miss: just after a viewport change the page
// is still laying out, and under load chromedp can compute the button's
// position before the layout moves it, so that the click lands elsewhere
// (seen at 390x844 in the full suite: the participant list never opened).
// A click that landed shows within 2 s and is not repeated.
func (b *browser) clickUntil(timeout time.Duration, what, sel, done string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if err := b.do(time.Until(deadline), chromedp.Click(sel)); err != nil {
			b.t.Fatalf("%s: %s: %v", b.name, what, err)
		}
		for settle := time.Now().Add(2 * time.Second); time.Now().Before(settle); time.Sleep(50 * time.Millisecond) {
			ok, err := eval[bool](b, done)
			if err == nil && ok {
				return
			}
			last = fmt.Sprint(ok, err)
		}
	}
	b.t.Fatalf("%s: %s: clicked %s, and %s is still not true (%s)", b.name, what, sel, done, last)
}

// eval evaluates a JavaScript expression in the page, awaiting it if it is
// a promise, and decodes the result into T.
func eval[T any](b *browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// waitFor polls cond until it reports done or the deadline passes, then
// fails the test with cond's last description of what it saw.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (done bool, status string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	status := ""
	for {
		var done bool
		done, status = cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last seen: %s", timeout, what, status)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// screenshot saves a PNG of the page, for a person to look at. It writes
// only when $HUDDLE_SCREENSHOT_DIR is set: tests never depend on it.
func (b *browser) screenshot(file string) {
	dir := os.Getenv("HUDDLE_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("%s: screenshot: %v", b.name, err)
		return
	}
	path := dir + "/" + file
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("%s: screenshot: %v", b.name, err)
		return
	}
	b.t.Logf("%s: screenshot written to %s", b.name, path)
}

// logBuffer collects the server's log, shown only when a test fails, and
// stops accepting lines once the test is over (a late log line from a
// goroutine must not touch a finished testing.T).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
