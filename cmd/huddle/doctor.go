package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// doctor checks, from wherever it runs (the server host or a client
// machine), that a server can be reached the way a participant reaches it:
// HTTP, the WebSocket, media over UDP and over ICE-TCP, the TURN relay,
// and a clock close enough for tokens. Every failure comes with the fix.
func doctor(args []string) error {
	f := newEnvFlags("doctor")
	url := f.String("url", "http://localhost:7880", "the server's address as clients use it")
	tok := f.String("token", "", "an access token to join with (default: minted from --api-key/--api-secret, or a dev token on loopback)")
	key := f.String("api-key", "", "API key to mint tokens with")
	secret := f.String("api-secret", "", "API secret to mint tokens with")
	timeout := f.Duration("timeout", 10*time.Second, "how long each media check waits for a connection")
	if err := f.parse(args); err != nil {
		return err
	}
	base, err := doctorURL(*url)
	if err != nil {
		return err
	}
	d := &doctorRun{url: base, token: *tok, key: *key, secret: *secret, timeout: *timeout}
	results := d.run(context.Background())
	failed := printResults(os.Stdout, d.url, results)
	if failed > 0 {
		return fmt.Errorf("doctor: %d of %d checks failed", failed, len(results))
	}
	return nil
}

// checkResult is one line of the doctor's report.
type checkResult struct {
	Name   string
	OK     bool
	Detail string // what was seen
	Fix    string // for a failure: what to change
}

type doctorRun struct {
	url, token, key, secret string
	timeout                 time.Duration
	room                    string
}

// run performs every check. The media checks join the server as bots in a
// room of their own; each has its own identity, so they run in parallel,
// except with a single --token, whose identity only one session can hold.
func (d *doctorRun) run(ctx context.Context) []checkResult {
	b := make([]byte, 4)
	rand.Read(b)
	d.room = "huddle-doctor-" + hex.EncodeToString(b)

	httpRes, date := d.checkHTTP(ctx)
	out := []checkResult{httpRes}
	if !httpRes.OK {
		return out // nothing else can work
	}
	out = append(out, checkClock(date, time.Now()), d.checkWebSocket(ctx))
	tokens, tokRes := d.tokenSource(ctx)
	out = append(out, tokRes)
	if !tokRes.OK {
		return out
	}
	checks := []func(context.Context, string) checkResult{d.checkUDP, d.checkTCP, d.checkTURN}
	media := make([]checkResult, len(checks))
	var wg sync.WaitGroup
	var serial sync.Mutex
	for i, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d.token != "" {
				serial.Lock()
				defer serial.Unlock()
			}
			t, err := tokens(ctx, fmt.Sprintf("doctor-%d", i))
			if err != nil {
				media[i] = checkResult{Name: "token", Detail: err.Error(), Fix: tokenFix}
				return
			}
			media[i] = check(ctx, t)
		}()
	}
	wg.Wait()
	return append(out, media...)
}

const tokenFix = "pass --token (from `huddle token`), or --api-key and --api-secret; a dev-mode server gives tokens only to its own machine (run doctor there)"

// tokenSource says where the media checks get their tokens: --token, a
// token minted from --api-key/--api-secret, or the dev server's.
func (d *doctorRun) tokenSource(ctx context.Context) (func(context.Context, string) (string, error), checkResult) {
	res := checkResult{Name: "token", OK: true}
	switch {
	case d.token != "":
		res.Detail = "using --token"
		return func(context.Context, string) (string, error) { return d.token, nil }, res
	case d.key != "" || d.secret != "":
		if d.key == "" || d.secret == "" {
			res.OK, res.Detail, res.Fix = false, "only one of --api-key and --api-secret given", "pass both"
			return nil, res
		}
		res.Detail = "minted with API key " + d.key
		return func(_ context.Context, id string) (string, error) {
			return auth.Mint(d.key, d.secret, auth.Claims{Identity: id, Name: id, Room: d.room,
				Grants: protocol.Grants{Publish: true, Subscribe: true, PublishData: true}}, 10*time.Minute)
		}, res
	}
	if _, err := sdk.DevToken(ctx, d.url, "doctor", d.room); err != nil {
		res.OK, res.Detail, res.Fix = false, err.Error(), tokenFix
		return nil, res
	}
	res.Detail = "dev-mode token from /api/dev/token"
	return func(ctx context.Context, id string) (string, error) { return sdk.DevToken(ctx, d.url, id, d.room) }, res
}

// printResults writes the report and returns how many checks failed.
func printResults(w io.Writer, url string, results []checkResult) int {
	fmt.Fprintf(w, "huddle doctor: %s\n", url)
	failed := 0
	for _, r := range results {
		mark := "PASS"
		if !r.OK {
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "  %s  %-10s %s\n", mark, r.Name, r.Detail)
		if !r.OK && r.Fix != "" {
			fmt.Fprintf(w, "        fix: %s\n", r.Fix)
		}
	}
	if failed == 0 {
		fmt.Fprintln(w, "all checks passed")
	}
	return failed
}

var errNoConnection = errors.New("no connection")

// doctorURL accepts the server's address as a page URL (http, https), a
// WebSocket URL (ws, wss, with or without /ws) or a bare host:port.
func doctorURL(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := neturl.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("doctor: --url %q: want http(s)://host:port", raw)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("doctor: --url %q: want http(s)://host:port", raw)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/ws")
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}
