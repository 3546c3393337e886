package main

// The network of TestNetnsRelayOnlyThroughNAT: three network namespaces
// made with ip(8) and iptables(8), torn down in t.Cleanup.
//
//	client ns                 nat ns                          server ns
//	10.77.0.2/24 eth0 ─veth─ priv0 10.77.0.1/24
//	                          pub0 198.18.0.2/24 ─veth─ eth0 198.18.0.1/24
//	                          MASQUERADE out of pub0
//	                          FORWARD priv0→pub0 only to 198.18.0.1
//	                            TCP 7880 (signaling), UDP+TCP 3478 (TURN)
//
// The server namespace has no route to 10.77.0.0/24: the server sees the
// client only as 198.18.0.2 (the NAT), and nothing it sends can open a way
// back in. Direct ICE to the media port (UDP/TCP 7882) is dropped by the
// NAT's FORWARD chain, in rules of their own so that the test can read how
// many packets they stopped.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// Addresses and ports inside the test's namespaces. 198.18.0.0/15 is the
// benchmarking range; none of it leaves the namespaces.
const (
	netnsServerIP  = "198.18.0.1"
	netnsNATPubIP  = "198.18.0.2"
	netnsNATPrvIP  = "10.77.0.1"
	netnsClientIP  = "10.77.0.2"
	netnsHTTPPort  = 7880
	netnsMediaPort = 7882
	netnsTURNPort  = 3478
)

// Comments on the NAT's counting DROP rules.
const (
	dropMediaUDP = "huddle-netns-media-udp"
	dropMediaTCP = "huddle-netns-media-tcp"
	dropOther    = "huddle-netns-other"
)

// netnsPrefix starts every namespace name this test makes, followed by the
// creating process's PID, so that a crashed run's leftovers can be found
// and parallel runs never collide.
const netnsPrefix = "huddle-nt"

var netnsSeq atomic.Int32

type netnsTopology struct {
	server, nat, client string
}

// inCI reports whether the test runs in CI, where every precondition is a
// failure rather than a skip.
func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}

// skipOrFail skips outside CI and fails in CI.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatalf("%s (CI=true: a failure, not a skip)", msg)
	}
	t.Skip(msg)
}

// setupNetns builds the three namespaces, or skips (fails in CI) when this
// machine cannot make namespaces or lacks iptables.
func setupNetns(t *testing.T) *netnsTopology {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		skipOrFail(t, "netns test needs ip(8) from Debian package iproute2: %v", err)
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "netns test needs root (CAP_NET_ADMIN) to make network namespaces; running as uid %d", os.Geteuid())
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		skipOrFail(t, "netns test needs iptables(8) (Debian package iptables) for the NAT namespace: %v", err)
	}
	removeStaleNetns(t)

	base := fmt.Sprintf("%s%d-%d", netnsPrefix, os.Getpid(), netnsSeq.Add(1))
	topo := &netnsTopology{server: base + "-srv", nat: base + "-nat", client: base + "-cli"}

	// The first namespace tells whether namespaces can be made at all.
	if out, err := exec.Command("ip", "netns", "add", topo.server).CombinedOutput(); err != nil {
		skipOrFail(t, "cannot create a network namespace (need root with CAP_NET_ADMIN and CAP_SYS_ADMIN): ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { topo.remove(t) })

	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("netns setup: %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	in := func(ns string, args ...string) {
		t.Helper()
		run(append([]string{"ip", "netns", "exec", ns}, args...)...)
	}
	run("ip", "netns", "add", topo.nat)
	run("ip", "netns", "add", topo.client)

	// The veths are made directly inside their namespaces: no name is ever
	// taken in the machine's own namespace.
	run("ip", "link", "add", "eth0", "netns", topo.server, "type", "veth", "peer", "name", "pub0", "netns", topo.nat)
	run("ip", "link", "add", "eth0", "netns", topo.client, "type", "veth", "peer", "name", "priv0", "netns", topo.nat)

	for _, ns := range []string{topo.server, topo.nat, topo.client} {
		run("ip", "-n", ns, "link", "set", "lo", "up")
	}
	run("ip", "-n", topo.server, "addr", "add", netnsServerIP+"/24", "dev", "eth0")
	run("ip", "-n", topo.server, "link", "set", "eth0", "up")
	run("ip", "-n", topo.nat, "addr", "add", netnsNATPubIP+"/24", "dev", "pub0")
	run("ip", "-n", topo.nat, "link", "set", "pub0", "up")
	run("ip", "-n", topo.nat, "addr", "add", netnsNATPrvIP+"/24", "dev", "priv0")
	run("ip", "-n", topo.nat, "link", "set", "priv0", "up")
	run("ip", "-n", topo.client, "addr", "add", netnsClientIP+"/24", "dev", "eth0")
	run("ip", "-n", topo.client, "link", "set", "eth0", "up")
	run("ip", "-n", topo.client, "route", "add", "default", "via", netnsNATPrvIP)

	// Forwarding is a per-namespace setting; sh is used rather than
	// sysctl(8), which a minimal machine may lack.
	in(topo.nat, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")

	ipt := func(args ...string) { t.Helper(); in(topo.nat, append([]string{"iptables", "-w"}, args...)...) }
	ipt("-t", "nat", "-A", "POSTROUTING", "-o", "pub0", "-j", "MASQUERADE")
	ipt("-P", "FORWARD", "DROP")
	ipt("-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
	allow := func(proto string, port int) {
		ipt("-A", "FORWARD", "-i", "priv0", "-o", "pub0", "-d", netnsServerIP, "-p", proto,
			"--dport", strconv.Itoa(port), "-m", "conntrack", "--ctstate", "NEW", "-j", "ACCEPT")
	}
	allow("tcp", netnsHTTPPort) // signaling: the WebSocket
	allow("udp", netnsTURNPort)
	allow("tcp", netnsTURNPort)
	count := func(proto, comment string) {
		ipt("-A", "FORWARD", "-i", "priv0", "-d", netnsServerIP, "-p", proto, "--dport", strconv.Itoa(netnsMediaPort),
			"-m", "comment", "--comment", comment, "-j", "DROP")
	}
	count("udp", dropMediaUDP)
	count("tcp", dropMediaTCP)
	ipt("-A", "FORWARD", "-m", "comment", "--comment", dropOther, "-j", "DROP")
	return topo
}

// remove deletes the namespaces; their veths go with them. Processes still
// inside would keep a namespace alive, so the tests stop theirs first (their
// cleanups were registered later and run earlier).
func (n *netnsTopology) remove(t *testing.T) {
	for _, ns := range []string{n.client, n.nat, n.server} {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("cleanup: ip netns del %s: %v: %s", ns, err, out)
		}
	}
}

var staleNetns = regexp.MustCompile(`^` + netnsPrefix + `(\d+)-\d+-(srv|nat|cli)$`)

// removeStaleNetns deletes namespaces left by earlier runs of this test
// whose process no longer exists (a run killed before its cleanup).
func removeStaleNetns(t *testing.T) {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		m := staleNetns.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // ours, or its creator still runs
		}
		if out, err := exec.Command("ip", "netns", "del", e.Name()).CombinedOutput(); err != nil {
			t.Logf("stale namespace %s: %v: %s", e.Name(), err, out)
		} else {
			t.Logf("removed stale namespace %s of a dead run (pid %d)", e.Name(), pid)
		}
	}
}

var forwardRule = regexp.MustCompile(`^\s*(\d+)\s+\d+\s.*/\* (\S+) \*/`)

// dropCounts reads the NAT's counting DROP rules: comment -> packets.
func (n *netnsTopology) dropCounts(t *testing.T) map[string]int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", n.nat, "iptables", "-w", "-n", "-v", "-x", "-L", "FORWARD").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -L FORWARD in %s: %v\n%s", n.nat, err, out)
	}
	counts := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		if m := forwardRule.FindStringSubmatch(line); m != nil {
			c, _ := strconv.Atoi(m[1])
			counts[m[2]] = c
		}
	}
	for _, c := range []string{dropMediaUDP, dropMediaTCP, dropOther} {
		if _, ok := counts[c]; !ok {
			t.Fatalf("iptables output lacks the rule %q:\n%s", c, out)
		}
	}
	return counts
}

// natRules is the NAT's rule set with counters, for failure messages.
func (n *netnsTopology) natRules() string {
	out, _ := exec.Command("ip", "netns", "exec", n.nat, "iptables", "-w", "-n", "-v", "-x", "-L", "FORWARD").CombinedOutput()
	nat, _ := exec.Command("ip", "netns", "exec", n.nat, "iptables", "-w", "-t", "nat", "-n", "-v", "-x", "-L", "POSTROUTING").CombinedOutput()
	return string(out) + string(nat)
}
