package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// A participant behind a NAT that lets nothing out but signaling and TURN
// still gets media both ways, through the embedded relay, while a
// participant in the same place that cannot use TURN gets none: the only way
// in is the relay, across real network namespaces, with `huddle serve` as
// built (see netns_topology_test.go for the network).
//
//   - server ns: `huddle serve` (media and TURN on 198.18.0.1) and the
//     "office" bot, a plain participant next to the server;
//   - client ns, behind the NAT: the "behind-nat" bot (RelayOnly), then
//     "fallback" (no RelayOnly, the server's TURN servers: what a browser
//     does) and "control" (no RelayOnly and, through a WebSocket proxy that
//     drops the joined message's iceServers, no TURN at all).
//
// Asserted: behind-nat and office exchange VP8 and Opus both ways with
// frame counters in order; behind-nat's publisher and subscriber PCs
// select relay pairs and it sent nothing to the media port; fallback gets
// both publishers' media over relay pairs; control is offered the same
// tracks but within netnsControlWait gets no frame and no ICE connection,
// while the NAT counts its connectivity checks to the media port dropped.
//
// Needs root (CAP_NET_ADMIN), ip(8) and iptables(8). Outside CI it skips
// when they are missing; with CI=true that is a failure.
func TestNetnsRelayOnlyThroughNAT(t *testing.T) {
	if os.Getenv(envNetnsChild) != "" {
		t.Skip("inside a netns child")
	}
	start := time.Now()
	topo := setupNetns(t)
	bin := buildHuddle(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	secretBytes := make([]byte, 16)
	rand.Read(secretBytes)
	apiKey, apiSecret := "netns-test", hex.EncodeToString(secretBytes)
	logLevel := "info"
	if os.Getenv("HUDDLE_TEST_LOG") != "" {
		logLevel = "debug"
	}
	hostPort := func(port int) string { return netnsServerIP + ":" + strconv.Itoa(port) }
	server := startInNetns(t, "huddle serve", topo.server, []string{
		"HUDDLE_HTTP_ADDR=" + hostPort(netnsHTTPPort),
		"HUDDLE_MEDIA_UDP_ADDR=" + hostPort(netnsMediaPort),
		"HUDDLE_MEDIA_TCP_ADDR=" + hostPort(netnsMediaPort),
		"HUDDLE_DATA_DIR=" + t.TempDir(),
		"HUDDLE_API_KEYS=" + apiKey + ":" + apiSecret,
		"HUDDLE_LOG_LEVEL=" + logLevel,
		"HUDDLE_TURN=on",
		"HUDDLE_TURN_UDP_ADDR=" + hostPort(netnsTURNPort),
		"HUDDLE_TURN_TCP_ADDR=" + hostPort(netnsTURNPort),
		"HUDDLE_TURN_RELAY_BIND_IP=" + netnsServerIP,
	}, bin, "serve")
	server.signalStop = true
	base := server.waitURL(t, 30*time.Second)
	if want := "http://" + hostPort(netnsHTTPPort); base != want {
		t.Fatalf("server URL %s, want %s", base, want)
	}

	var procs []*netnsProc
	t.Cleanup(func() { // runs before the processes stop and the namespaces go
		if !t.Failed() {
			return
		}
		t.Logf("NAT rules:\n%s", topo.natRules())
		for _, p := range append([]*netnsProc{server}, procs...) {
			t.Logf("--- %s output:\n%s", p.name, p.logs())
		}
	})
	bot := func(identity, ns string, env ...string) *netnsProc {
		tok, err := auth.Mint(apiKey, apiSecret, auth.Claims{
			Identity: identity, Name: identity, Room: "netns", Grants: protocol.AllGrants(),
		}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		env = append(env,
			envNetnsChild+"=bot",
			envNetnsURL+"="+base,
			envNetnsToken+"="+tok,
			envNetnsLifetime+"=2m",
		)
		p := startInNetns(t, identity+" bot in "+ns, ns, env, self, "-test.run=^TestNetnsChildBot$", "-test.timeout=3m")
		procs = append(procs, p)
		return p
	}

	// 1. The office bot next to the server and the relay-only bot behind
	// the NAT exchange media.
	office := bot("office", topo.server, envNetnsPublish+"=1")
	natBot := bot("behind-nat", topo.client, envNetnsPublish+"=1", envNetnsRelay+"=1")
	const enough = 100 // frames: 2 s of media at 50 fps
	pollNetns(t, "media both ways between office and behind-nat (relay only)", 30*time.Second, func() (bool, string) {
		o, n := office.status(), natBot.status()
		ok := num(o, "v:behind-nat") >= enough && num(o, "a:behind-nat") >= enough &&
			num(n, "v:office") >= enough && num(n, "a:office") >= enough &&
			strings.HasPrefix(n["pubpair"], "relay:") && strings.HasPrefix(n["subpair"], "relay:")
		return ok, fmt.Sprintf("office: %s\nbehind-nat: %s", office.lastLine("status"), natBot.lastLine("status"))
	}, office, natBot)
	media := time.Now()
	n := natBot.status()
	t.Logf("relay-only bot: %s after %v; publisher pair %s, subscriber pair %s",
		pick(n, "v:office", "a:office"), media.Sub(start).Round(time.Millisecond), n["pubpair"], n["subpair"])
	if drops := topo.dropCounts(t); drops[dropMediaUDP]+drops[dropMediaTCP] != 0 {
		t.Errorf("the relay-only bot sent %d UDP and %d TCP packets straight to the media port; it may use only the relay",
			drops[dropMediaUDP], drops[dropMediaTCP])
	}

	// 2. Behind the same NAT: an ordinary bot falls back to the relay; a
	// bot without TURN servers gets nothing.
	fallback := bot("fallback", topo.client)
	control := bot("control", topo.client, envNetnsNoICE+"="+netnsClientIP)
	var controlJoined time.Time
	before := num(office.status(), "v:behind-nat")
	pollNetns(t, "fallback media over the relay while control stays cut off", netnsControlWait+20*time.Second, func() (bool, string) {
		f, c, drops := fallback.status(), control.status(), topo.dropCounts(t)
		desc := fmt.Sprintf("fallback: %s\ncontrol: %s\nNAT drops: %v", fallback.lastLine("status"), control.lastLine("status"), drops)
		if c != nil {
			if controlJoined.IsZero() {
				controlJoined = time.Now()
			}
			if num(c, "v:office")+num(c, "a:office")+num(c, "v:behind-nat")+num(c, "a:behind-nat") > 0 || c["everconnected"] != "false" {
				t.Fatalf("the control bot, which has no TURN server, got media or an ICE connection through the NAT: the direct path is open\n%s", desc)
			}
		}
		fallbackOK := num(f, "v:office") >= 50 && num(f, "v:behind-nat") >= 50 &&
			strings.HasPrefix(f["pubpair"], "relay:") && strings.HasPrefix(f["subpair"], "relay:")
		controlOK := c != nil && time.Since(controlJoined) >= netnsControlWait &&
			num(c, "stripped") > 0 && drops[dropMediaUDP] > 0 &&
			// offered the same tracks as fallback: both publishers' video and audio
			num(c, "offered") >= 4 && num(c, "offered") == num(f, "offered")
		return fallbackOK && controlOK, desc
	}, office, natBot, fallback, control)

	f, c, drops := fallback.status(), control.status(), topo.dropCounts(t)
	t.Logf("fallback bot (no RelayOnly, with TURN): %s over %s / %s", pick(f, "v:office", "v:behind-nat"), f["pubpair"], f["subpair"])
	t.Logf("control bot (no RelayOnly, no TURN): %d tracks offered, no frames, ICE %s/%s after %v; NAT dropped %d UDP and %d TCP packets to the media port",
		num(c, "offered"), c["pub"], c["sub"], netnsControlWait, drops[dropMediaUDP], drops[dropMediaTCP])

	// Media kept flowing, in order, all along.
	if after := num(office.status(), "v:behind-nat"); after <= before {
		t.Errorf("office stopped receiving from behind-nat (%d frames, then %d)", before, after)
	}
	for _, p := range []*netnsProc{office, natBot, fallback} {
		if o := p.status()["order"]; o != "ok" {
			t.Errorf("%s: frames out of order or lost: %s", p.name, o)
		}
	}
	t0 := time.Now()
	stopAll(t, procs...)
	t.Logf("bots left in %v", time.Since(t0).Round(time.Millisecond))
	if err := server.terminate(15 * time.Second); err != nil {
		t.Errorf("huddle serve after SIGTERM: %v", err)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// netnsControlWait is how long the control bot must stay without media and
// without an ICE connection. On these veths a reachable path connects in
// well under a second (the fallback bot, through the relay, does).
const netnsControlWait = 8 * time.Second

// pollNetns polls cond every 50 ms until it holds, failing at the deadline
// or as soon as one of the processes exits or reports an error.
func pollNetns(t *testing.T, what string, timeout time.Duration, cond func() (bool, string), procs ...*netnsProc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, desc := cond()
		if ok {
			return
		}
		for _, p := range procs {
			if e := p.lastLine("error"); e != "" {
				t.Fatalf("%s: %s", p.name, e)
			}
			if p.hasExited() {
				t.Fatalf("%s exited while waiting for %s", p.name, what)
			}
			if o := p.status()["order"]; o != "" && o != "ok" {
				t.Fatalf("%s: frames out of order or lost: %s", p.name, o)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s:\n%s", timeout, what, desc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// num is a status field as a number (0 when absent).
func num(status map[string]string, key string) int {
	n, _ := strconv.Atoi(status[key])
	return n
}

func pick(status map[string]string, keys ...string) string {
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+status[k])
	}
	return strings.Join(parts, " ")
}
