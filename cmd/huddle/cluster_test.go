package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/huddle-rtc/huddle/sdk"
)

// serveProc is a `huddle serve` child process.
type serveProc struct {
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs strings.Builder
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// startClusterServe runs `huddle serve` with loopback ports chosen by the kernel,
// TURN off and a data directory of its own, plus args; it waits for the
// URL the process prints.
func startClusterServe(t *testing.T, bin string, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{cmd: exec.Command(bin, append([]string{"serve"}, args...)...)}
	p.cmd.Env = append(os.Environ(),
		"HUDDLE_HTTP_ADDR=127.0.0.1:0", "HUDDLE_MEDIA_UDP_ADDR=127.0.0.1:0", "HUDDLE_MEDIA_TCP_ADDR=127.0.0.1:0",
		"HUDDLE_DATA_DIR="+t.TempDir(), "HUDDLE_TURN=off")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("--- huddle serve %v ---\n%s", args, p.log())
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := urlLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case p.url = <-found:
	case <-time.After(60 * time.Second):
		t.Fatalf("huddle serve %v never printed its URL:\n%s", args, p.log())
	}
	if p.url == "" {
		t.Fatalf("huddle serve %v exited before printing its URL:\n%s", args, p.log())
	}
	return p
}

// stop sends SIGTERM and expects a clean exit.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("huddle exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("huddle did not stop on SIGTERM")
	}
}

// TestServeClusterMode: two `huddle serve --redis` processes on one
// redis-server see each other in /healthz, share the dev key (a token
// from one node's page works on the other), and a bot joining through
// each lands in one room on one node; both stop cleanly on SIGTERM.
func TestServeClusterMode(t *testing.T) {
	bin := buildHuddle(t)
	rs := redistest.Start(t)
	a := startClusterServe(t, bin, "--redis", rs.URL(), "--node-id", "a")
	b := startClusterServe(t, bin, "--redis", rs.URL(), "--node-id", "b")
	type health struct {
		Cluster struct {
			Node    string
			RedisOK bool
			Members []struct{ ID, URL string }
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range []*serveProc{a, b} {
		for {
			var h health
			getJSON(t, p.url+"/healthz", &h)
			if len(h.Cluster.Members) == 2 && h.Cluster.RedisOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: healthz cluster %+v, want two members and Redis reachable", p.url, h.Cluster)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var tok struct{ Token string }
	getJSON(t, a.url+"/api/dev/token?name=Ann&room=standup", &tok)
	var tok2 struct{ Token string }
	getJSON(t, a.url+"/api/dev/token?name=Bob&room=standup", &tok2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ann, err := sdk.Join(ctx, b.url, tok.Token, sdk.Options{NoAutoReconnect: true})
	if err != nil {
		t.Fatalf("a token from node a joins through node b: %v", err)
	}
	defer ann.Leave()
	bob, err := sdk.Join(ctx, a.url, tok2.Token, sdk.Options{NoAutoReconnect: true})
	if err != nil {
		t.Fatalf("bob joins through node a: %v", err)
	}
	defer bob.Leave()
	deadline = time.Now().Add(20 * time.Second)
	for len(ann.Participants()) != 1 || len(bob.Participants()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the two bots do not see each other: ann sees %d, bob %d", len(ann.Participants()), len(bob.Participants()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var ha, hb struct{ Rooms, Participants int }
	getJSON(t, a.url+"/healthz", &ha)
	getJSON(t, b.url+"/healthz", &hb)
	if ha.Rooms+hb.Rooms != 1 || ha.Participants+hb.Participants != 2 {
		t.Errorf("rooms %d+%d, participants %d+%d: want one room with both, on one node", ha.Rooms, hb.Rooms, ha.Participants, hb.Participants)
	}
	ann.Leave()
	bob.Leave()
	a.stop(t)
	b.stop(t)
}

// A --redis that does not answer stops `huddle serve` at start with a
// clear error, rather than running a node that cannot place rooms.
func TestServeClusterModeRedisUnreachable(t *testing.T) {
	bin := buildHuddle(t)
	cmd := exec.Command(bin, "serve", "--redis", "redis://127.0.0.1:1/0")
	cmd.Env = append(os.Environ(), "HUDDLE_HTTP_ADDR=127.0.0.1:0", "HUDDLE_MEDIA_UDP_ADDR=127.0.0.1:0",
		"HUDDLE_MEDIA_TCP_ADDR=127.0.0.1:0", "HUDDLE_DATA_DIR="+t.TempDir(), "HUDDLE_TURN=off")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("huddle serve ran with an unreachable Redis:\n%s", out)
	}
	if !strings.Contains(string(out), "cluster mode: redis 127.0.0.1:1") {
		t.Errorf("the error does not name the Redis it could not reach:\n%s", out)
	}
	bad := exec.Command(bin, "serve", "--redis", "http://127.0.0.1:6379")
	bad.Env = cmd.Env
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "redis url") {
		t.Errorf("--redis with an http URL: %v\n%s", err, out)
	}
}
