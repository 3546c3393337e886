package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/signaling/auth"
)

// buildHuddle compiles the binary once per test run.
func buildHuddle(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "huddle")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var urlLine = regexp.MustCompile(`Huddle is running: open (http://\S+)`)

// The binary starts with no flags but environment overrides (ports 0, a
// temporary data dir), says where to go, serves the page, health and dev
// tokens, and stops cleanly on SIGTERM.
func TestServeStartsAndStops(t *testing.T) {
	bin := buildHuddle(t)
	data := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"HUDDLE_HTTP_ADDR=127.0.0.1:0",
		"HUDDLE_MEDIA_UDP_ADDR=127.0.0.1:0",
		"HUDDLE_MEDIA_TCP_ADDR=127.0.0.1:0",
		"HUDDLE_DATA_DIR="+data,
		"HUDDLE_TURN_UDP_ADDR=127.0.0.1:0",
		"HUDDLE_TURN_TCP_ADDR=127.0.0.1:0",
		"HUDDLE_TURN_RELAY_BIND_IP=127.0.0.1",
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	found := make(chan string, 1)
	var (
		logMu   sync.Mutex
		logText strings.Builder
	)
	logged := func() string {
		logMu.Lock()
		defer logMu.Unlock()
		return logText.String()
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logText.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := urlLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	var base string
	select {
	case base = <-found:
	case <-time.After(60 * time.Second):
		t.Fatal("huddle never printed its URL")
	}
	if base == "" {
		t.Fatal("huddle exited before printing its URL")
	}

	var health struct {
		Status  string
		DevMode bool
	}
	getJSON(t, base+"/healthz", &health)
	if health.Status != "ok" || !health.DevMode {
		t.Errorf("healthz = %+v, want ok in dev mode", health)
	}
	if l := logged(); !strings.Contains(l, "turn=") || strings.Contains(l, "turn=off") {
		t.Errorf("the embedded TURN relay did not start by default:\n%s", l)
	}
	page := get(t, base+"/")
	if !strings.Contains(page, "<html") {
		t.Errorf("page at / is not HTML: %.100s", page)
	}
	var tok struct{ Token string }
	getJSON(t, base+"/api/dev/token?name=Ada&room=tour", &tok)
	var key struct{ Key, Secret string }
	raw, err := os.ReadFile(filepath.Join(data, "dev-key.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &key); err != nil {
		t.Fatal(err)
	}
	claims, err := auth.Keys{key.Key: key.Secret}.Verify(tok.Token)
	if err != nil || claims.Room != "tour" || claims.Name != "Ada" {
		t.Errorf("dev token: %+v, %v", claims, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("huddle exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("huddle did not stop on SIGTERM")
	}
}

// `huddle token` mints a token the server accepts.
func TestTokenCommand(t *testing.T) {
	bin := buildHuddle(t)
	out, err := exec.Command(bin, "token", "--api-key", "K1", "--api-secret", "S1", "--identity", "bot", "--room", "r", "--grants", "subscribe").Output()
	if err != nil {
		t.Fatalf("huddle token: %v", err)
	}
	c, err := auth.Keys{"K1": "S1"}.Verify(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity != "bot" || c.Room != "r" || !c.Grants.Subscribe || c.Grants.Publish {
		t.Errorf("claims = %+v", c)
	}
	if err := exec.Command(bin, "token", "--identity", "bot", "--room", "r").Run(); err == nil {
		t.Error("token without a key succeeded")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	return string(b)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, url)), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
