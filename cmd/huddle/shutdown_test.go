package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// startServe runs `huddle serve` on a fixed HTTP address and returns once
// it says it is running.
func startServe(t *testing.T, bin, addr, data string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--http-addr", addr, "--media-udp-addr", "127.0.0.1:0",
		"--media-tcp-addr", "off", "--turn", "off", "--data-dir", data)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	up := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			if os.Getenv("HUDDLE_TEST_LOG") != "" {
				fmt.Fprintln(os.Stderr, "serve:", sc.Text())
			}
			if !said && urlLine.MatchString(sc.Text()) {
				said = true
				up <- true
			}
		}
		if !said {
			up <- false
		}
	}()
	select {
	case ok := <-up:
		if !ok {
			t.Fatal("huddle exited before serving")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("huddle never said it was running")
	}
	return cmd
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// SIGTERM during a call: the process tells its participants to reconnect
// (close 1012 with a reason), flushes documents and chat, and exits by
// itself; a bot reconnects to the restarted server by itself, and the
// document and chat written before the restart are there.
func TestSIGTERMClientsReconnectToRestartedServer(t *testing.T) {
	bin := buildHuddle(t)
	data := t.TempDir()
	addr := freeAddr(t)
	cmd := startServe(t, bin, addr, data)

	var key struct{ Key, Secret string }
	raw, err := os.ReadFile(filepath.Join(data, "dev-key.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &key); err != nil {
		t.Fatal(err)
	}
	token := func(identity string) string {
		tok, err := auth.Mint(key.Key, key.Secret, auth.Claims{Identity: identity, Name: identity, Room: "ops", Grants: protocol.AllGrants()}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	reconnected := make(chan protocol.Participant, 4)
	errs := make(chan *protocol.Error, 16)
	bot, err := sdk.Join(ctx, "http://"+addr, token("bot"), sdk.Options{
		ReconnectTimeout: 60 * time.Second,
		OnReconnect:      func(p protocol.Participant) { reconnected <- p },
		OnError:          func(e *protocol.Error) { errs <- e },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bot.Leave() })
	info, err := bot.Docs().Create(ctx, "runbook", "step one\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bot.SendChat(ctx, "restarting soon"); err != nil {
		t.Fatal(err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("huddle exited with %v after SIGTERM", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("huddle did not exit by itself after SIGTERM")
	}
	if bot.Err() != nil {
		t.Fatalf("the bot gave up when the server restarted: %v", bot.Err())
	}

	startServe(t, bin, addr, data)
	select {
	case p := <-reconnected:
		if p.Identity != "bot" {
			t.Errorf("reconnected as %+v", p)
		}
	case <-ctx.Done():
		t.Fatal("the bot did not reconnect to the restarted server")
	}
	late, err := sdk.Join(ctx, "http://"+addr, token("late"), sdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { late.Leave() })
	hist := late.ChatHistory()
	if len(hist) != 1 || hist[0].Text != "restarting soon" {
		t.Errorf("chat after the restart: %+v", hist)
	}
	doc, err := late.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatalf("document after the restart: %v", err)
	}
	if doc.Text() != "step one\n" {
		t.Errorf("document text after the restart: %q", doc.Text())
	}
	// The bot works on the new server: its chat reaches the late joiner.
	if _, err := bot.SendChat(ctx, "back"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		h := late.ChatHistory()
		if len(h) == 2 && h[1].Text == "back" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the late joiner's chat: %+v", h)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
