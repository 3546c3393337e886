package main

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/turn"
)

// loopbackTURN is the embedded relay as `huddle serve` runs it by default,
// on loopback ports, its relay sockets bound to loopback too: nothing a
// test does can send a packet off this machine.
func loopbackTURN(c *signaling.Config) {
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
	srv := sdktest.StartWith(t, func(c *signaling.Config) {
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
