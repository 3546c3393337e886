package main

// TestNetnsDoctorUDPBlocked: `huddle doctor` on a client machine, against a
// server whose firewall drops UDP to the media port, reports UDP
// unreachable with the port to open, and ICE-TCP and TURN working. Two
// network namespaces of its own (names start with netnsDoctorPrefix, so
// that they never collide with TestNetnsRelayOnlyThroughNAT's):
//
//	client ns 198.18.0.2/24 eth0 ─veth─ eth0 198.18.0.1/24 server ns
//	                                    INPUT -i eth0 udp dport 7882 DROP
//
// The drop is on packets arriving from the veth only: the TURN relay in
// the server namespace still reaches the media port over the namespace's
// own loopback path, as a relay on the server host does.
//
// The server binds media to the unspecified address, as by default, and
// has a second interface (dummy0, like a docker0 bridge) that clients
// cannot reach; --media-interfaces eth0 keeps it out of the candidates,
// which the start-up line and doctor's report both show.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const netnsDoctorPrefix = "huddle-dr"

// netnsDummyIP is the address of the server namespace's second interface.
const netnsDummyIP = "10.78.0.1"

func TestNetnsDoctorUDPBlocked(t *testing.T) {
	if os.Getenv(envNetnsChild) != "" {
		t.Skip("inside a netns child")
	}
	srvNS, cliNS := setupDoctorNetns(t)
	bin := buildHuddle(t)

	secret := make([]byte, 16)
	rand.Read(secret)
	apiKey, apiSecret := "doctor-test", hex.EncodeToString(secret)
	hostPort := func(port int) string { return netnsServerIP + ":" + strconv.Itoa(port) }
	server := startInNetns(t, "huddle serve", srvNS, []string{
		"HUDDLE_HTTP_ADDR=" + hostPort(netnsHTTPPort),
		"HUDDLE_MEDIA_UDP_ADDR=:" + strconv.Itoa(netnsMediaPort),
		"HUDDLE_MEDIA_TCP_ADDR=:" + strconv.Itoa(netnsMediaPort),
		"HUDDLE_MEDIA_INTERFACES=eth0",
		"HUDDLE_DATA_DIR=" + t.TempDir(),
		"HUDDLE_API_KEYS=" + apiKey + ":" + apiSecret,
		"HUDDLE_TURN=on",
		"HUDDLE_TURN_UDP_ADDR=" + hostPort(netnsTURNPort),
		"HUDDLE_TURN_TCP_ADDR=" + hostPort(netnsTURNPort),
		"HUDDLE_TURN_RELAY_BIND_IP=" + netnsServerIP,
	}, bin, "serve")
	server.signalStop = true
	base := server.waitURL(t, 30*time.Second)
	if l := server.logs(); !strings.Contains(l, "media_advertised="+netnsServerIP+" ") {
		t.Errorf("the start-up line does not advertise exactly %s (eth0 only):\n%s", netnsServerIP, l)
	}

	doc := startInNetns(t, "huddle doctor", cliNS, []string{
		"HUDDLE_API_KEY=" + apiKey, "HUDDLE_API_SECRET=" + apiSecret,
	}, bin, "doctor", "--url", base, "--timeout", "6s")
	select {
	case <-doc.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("huddle doctor did not finish within 60 s:\n%s", doc.logs())
	}
	out := doc.logs()
	t.Logf("huddle doctor in the client namespace:\n%s", out)
	if doc.err == nil {
		t.Error("huddle doctor exited 0 although UDP to the media port is blocked")
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "PASS" || f[0] == "FAIL") {
			lines[f[1]] = l
		}
	}
	for _, name := range []string{"http", "clock", "websocket", "token", "ice-tcp", "turn"} {
		if !strings.HasPrefix(strings.TrimSpace(lines[name]), "PASS") {
			t.Errorf("check %s: %q, want PASS", name, lines[name])
		}
	}
	udp := lines["media-udp"]
	if !strings.HasPrefix(strings.TrimSpace(udp), "FAIL") || !strings.Contains(udp, "UDP unreachable") || !strings.Contains(udp, hostPort(netnsMediaPort)) {
		t.Errorf("media-udp: %q, want FAIL naming UDP unreachable at %s", udp, hostPort(netnsMediaPort))
	}
	if strings.Contains(out, netnsDummyIP) {
		t.Errorf("doctor was offered %s of dummy0, which --media-interfaces eth0 leaves out", netnsDummyIP)
	}
	if want := fmt.Sprintf("open UDP port %d", netnsMediaPort); !strings.Contains(out, want) {
		t.Errorf("the report does not say %q", want)
	}
	if n := doctorDrops(t, srvNS); n == 0 {
		t.Error("the server's firewall dropped no UDP packet: the check did not try the blocked path")
	}
	if t.Failed() {
		t.Logf("server output:\n%s", server.logs())
	}
}

// setupDoctorNetns makes the two namespaces, or skips (fails in CI) when
// this machine cannot.
func setupDoctorNetns(t *testing.T) (srv, cli string) {
	t.Helper()
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "netns doctor test needs %s(8) (Debian packages iproute2, iptables): %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "netns doctor test needs root (CAP_NET_ADMIN); running as uid %d", os.Geteuid())
	}
	base := fmt.Sprintf("%s%d-%d", netnsDoctorPrefix, os.Getpid(), netnsSeq.Add(1))
	srv, cli = base+"-srv", base+"-cli"
	if out, err := exec.Command("ip", "netns", "add", srv).CombinedOutput(); err != nil {
		skipOrFail(t, "cannot create a network namespace: ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		for _, ns := range []string{cli, srv} {
			if _, err := os.Stat("/run/netns/" + ns); err != nil {
				continue
			}
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("cleanup: ip netns del %s: %v: %s", ns, err, out)
			}
		}
	})
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("netns setup: %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", cli)
	run("ip", "link", "add", "eth0", "netns", srv, "type", "veth", "peer", "name", "eth0", "netns", cli)
	for ns, addr := range map[string]string{srv: netnsServerIP, cli: netnsNATPubIP} {
		run("ip", "-n", ns, "link", "set", "lo", "up")
		run("ip", "-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
		run("ip", "-n", ns, "link", "set", "eth0", "up")
	}
	// A veth pair with both ends in the server namespace stands for the
	// bridge (this kernel may lack the dummy link type).
	run("ip", "link", "add", "dummy0", "netns", srv, "type", "veth", "peer", "name", "dummy1", "netns", srv)
	run("ip", "-n", srv, "addr", "add", netnsDummyIP+"/24", "dev", "dummy0")
	run("ip", "-n", srv, "link", "set", "dummy0", "up")
	run("ip", "-n", srv, "link", "set", "dummy1", "up")
	run("ip", "netns", "exec", srv, "iptables", "-w", "-A", "INPUT", "-i", "eth0", "-p", "udp",
		"--dport", strconv.Itoa(netnsMediaPort), "-m", "comment", "--comment", dropMediaUDP, "-j", "DROP")
	return srv, cli
}

// doctorDrops is how many packets the server's UDP rule dropped.
func doctorDrops(t *testing.T, ns string) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "iptables", "-w", "-n", "-v", "-x", "-L", "INPUT").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -L INPUT in %s: %v\n%s", ns, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if m := forwardRule.FindStringSubmatch(line); m != nil && m[2] == dropMediaUDP {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	t.Fatalf("iptables INPUT in %s lacks the rule %s:\n%s", ns, dropMediaUDP, out)
	return 0
}
