package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/web"
)

// TestHandlerServesAssets checks what a browser depends on before any
// JavaScript runs: the page at "/", modules with a JavaScript content type
// (browsers refuse ES modules served as anything else), revalidation by ETag.
func TestHandlerServesAssets(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()

	get := func(path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}

	res, body := get("/", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !strings.Contains(body, `<script type="module" src="app.js">`) {
		t.Fatalf("GET /: page does not load app.js as a module:\n%s", body)
	}
	if res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("GET /: missing CSP or Referrer-Policy: %v", res.Header)
	}
	if res.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("GET /: Cache-Control %q, want no-cache", res.Header.Get("Cache-Control"))
	}

	for _, f := range []string{"app.js", "meeting.js", "peers.js", "signaling.js", "media.js", "ui.js"} {
		res, _ := get("/"+f, nil)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("GET /%s: %d %q", f, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	res, _ = get("/style.css", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Errorf("GET /style.css: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}

	res, _ = get("/app.js", nil)
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("GET /app.js: no ETag")
	}
	if res, _ := get("/app.js", map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET /app.js with If-None-Match: %d, want 304", res.StatusCode)
	}

	if res, _ := get("/nope.js", nil); res.StatusCode != 404 {
		t.Errorf("GET /nope.js: %d, want 404", res.StatusCode)
	}
	if res, _ := get("/../embed.go", nil); res.StatusCode != 404 {
		t.Errorf("GET /../embed.go: %d, want 404", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", nil)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %v %v, want 405", res.StatusCode, err)
	}
}

// TestPageLoadsInBrowser loads the page from web.Handler alone (no signaling
// server): the form renders, prefilled from the query string, every module
// loads without a console error, and a failed token request shows its error.
func TestPageLoadsInBrowser(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()

	b := newBrowser(t, "alice")
	b.dumpLogsOnFailure()
	b.mustDo(20*time.Second, "load page",
		chromedp.Navigate(srv.URL+"/?room=standup&name=Ada%20L"),
		chromedp.WaitVisible(chromedp.ID("join")),
	)

	// window.huddle appears only after every module loaded and ran.
	waitFor(t, 10*time.Second, "window.huddle.state == idle", func() (bool, string) {
		s, err := eval[string](b, `window.huddle ? window.huddle.state : "no hooks"`)
		return err == nil && s == "idle", fmt.Sprint(s, err)
	})
	for id, want := range map[string]string{"name": "Ada L", "room": "standup"} {
		got, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.ID(id)))
		if err != nil || got != want {
			t.Errorf("#%s = %q (%v), want %q from the query string", id, got, err, want)
		}
	}
	if p := b.problems(); len(p) > 0 {
		t.Fatalf("page logged problems while loading:\n%s", strings.Join(p, "\n"))
	}

	// This server has no /api/dev/token, so joining must fail visibly.
	b.mustDo(10*time.Second, "click join", chromedp.Click(chromedp.ID("join")))
	waitFor(t, 10*time.Second, "state error", func() (bool, string) {
		s, err := eval[string](b, `window.huddle.state`)
		return err == nil && s == "error", fmt.Sprint(s, err)
	})
	msg, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.ID("error"), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("error box not visible: %v", err)
	}
	if !strings.Contains(msg, "HTTP 404") {
		t.Errorf("error box says %q, want it to name the failed token request (HTTP 404)", msg)
	}
	lastErr, _ := eval[string](b, `window.huddle.lastError`)
	if lastErr != msg {
		t.Errorf("window.huddle.lastError = %q, want the shown error %q", lastErr, msg)
	}
}
