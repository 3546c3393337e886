package main

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/turn"
)

// loopbackTURN is the embedded relay as `huddle serve` runs it by default,
// on loopback ports, its relay sockets bound to loopback too: nothing a
// test does can send a packet off this machine.
func loopbackTURN(c *node.Config) {
	c.TURN = &turn.Config{UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", RelayBindIP: netip.MustParseAddr("127.0.0.1")}
}

func runDoctor(t *testing.T, url string, timeout time.Duration) (map[string]checkResult, string) {
	t.Helper()
	d := &doctorRun{url: url, timeout: timeout}
	results := d.run(context.Background())
	var out bytes.Buffer
	printResults(&out, url, results)
	byName := map[string]checkResult{}
	for _, r := range results {
		byName[r.Name] = r
	}
	return byName, out.String()
}

// Against a healthy dev-mode server on loopback every check passes: the
// page's HTTP and WebSocket, the clock, a dev token, and real ICE
// connections over UDP only, over TCP only, and relay-only through TURN.
func TestDoctorHealthyServer(t *testing.T) {
	srv := sdktest.StartWith(t, loopbackTURN)
	if err := doctor([]string{"--url", srv.URL(), "--timeout", "20s"}); err != nil {
		t.Fatalf("huddle doctor against a healthy server: %v", err)
	}
	results, out := runDoctor(t, srv.URL(), 20*time.Second)
	t.Logf("\n%s", out)
	for _, name := range []string{"http", "clock", "websocket", "token", "media-udp", "ice-tcp", "turn"} {
		r, ok := results[name]
		if !ok || !r.OK {
			t.Errorf("check %s: %+v, want a pass", name, r)
		}
	}
	if !strings.Contains(results["turn"].Detail, "relay ") {
		t.Errorf("turn check did not connect through a relay candidate: %s", results["turn"].Detail)
	}
	if !strings.Contains(results["ice-tcp"].Detail, "-> tcp ") {
		t.Errorf("ice-tcp check did not connect over TCP: %s", results["ice-tcp"].Detail)
	}
}

// A server that advertises an address nobody can reach (a TEST-NET
// address, as a wrong --public-ips behind Docker would be) fails the
// direct media checks, and the report names that address and the flag.
func TestDoctorWrongAdvertisedAddress(t *testing.T) {
	srv := sdktest.StartWith(t, func(c *node.Config) {
		loopbackTURN(c)
		c.PublicIPs = []string{"192.0.2.1"}
	})
	results, out := runDoctor(t, srv.URL(), 4*time.Second)
	t.Logf("\n%s", out)
	for _, name := range []string{"http", "clock", "websocket", "token"} {
		if !results[name].OK {
			t.Errorf("check %s failed against a server whose HTTP is fine: %+v", name, results[name])
		}
	}
	udp := results["media-udp"]
	if udp.OK {
		t.Fatalf("media-udp passed against a server advertising 192.0.2.1: %+v", udp)
	}
	for _, want := range []string{"192.0.2.1", "--public-ips"} {
		if !strings.Contains(udp.Detail+" "+udp.Fix, want) {
			t.Errorf("media-udp report lacks %q:\n%s", want, out)
		}
	}
	if results["ice-tcp"].OK {
		t.Errorf("ice-tcp passed against a server advertising 192.0.2.1: %+v", results["ice-tcp"])
	}
	if err := doctor([]string{"--url", srv.URL(), "--timeout", "2s"}); err == nil {
		t.Error("huddle doctor returned success with failing checks")
	}
}

// The clock check passes within maxClockSkew either way and fails beyond
// it, naming the difference and NTP.
func TestDoctorClock(t *testing.T) {
	server := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		off time.Duration
		ok  bool
	}{{0, true}, {29 * time.Second, true}, {-29 * time.Second, true}, {31 * time.Second, false}, {-2 * time.Minute, false}} {
		r := checkClock(server, server.Add(c.off))
		if r.OK != c.ok {
			t.Errorf("clock %v off: ok=%v, want %v (%s)", c.off, r.OK, c.ok, r.Detail)
		}
		if !r.OK && (!strings.Contains(r.Detail, c.off.String()) || !strings.Contains(r.Fix, "NTP")) {
			t.Errorf("clock %v off: %q / %q, want the difference and NTP", c.off, r.Detail, r.Fix)
		}
	}
	if r := checkClock(time.Time{}, server); r.OK {
		t.Error("a missing Date header passed the clock check")
	}
}

// --url takes what an operator is likely to paste.
func TestDoctorURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://h:7880":           "http://h:7880",
		"https://meet.example/":   "https://meet.example",
		"wss://meet.example/ws":   "https://meet.example",
		"ws://h:7880/huddle/ws":   "http://h:7880/huddle",
		"h:7880":                  "http://h:7880",
		"http://h:7880/?room=x#y": "http://h:7880",
	} {
		if got, err := doctorURL(in); err != nil || got != want {
			t.Errorf("doctorURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://h", "http://", "://"} {
		if _, err := doctorURL(bad); err == nil {
			t.Errorf("doctorURL(%q) accepted", bad)
		}
	}
}
