// Package clustertest runs a Huddle cluster of real processes for tests:
// one redis-server (internal/redistest), N `huddle serve --redis` nodes,
// each with its own ports, data directory and captured log, and a
// round-robin load balancer in front of them. Nodes can be killed
// (SIGKILL), paused (SIGSTOP), resumed (SIGCONT) and restarted, so tests
// see what an operator's failures really do to a cluster.
package clustertest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// The API key every node of a test cluster shares: tokens minted with it
// are accepted by all of them, as a real deployment's would be.
const (
	APIKey    = "clustertest"
	APISecret = "clustertest-secret-0123456789abcdef"
)

// AdvertiseFlag names the serve flag that sets the URL a node advertises to
// the others (where relayed participants are redirected, docs/CLUSTER.md).
const AdvertiseFlag = "advertise-url"

// Options shape a cluster.
type Options struct {
	Nodes int // default 3
	// Args are extra `huddle serve` arguments for every node.
	Args []string
	// LogLevel of the nodes (default info: joins and ownership changes are
	// logged at info).
	LogLevel string
	// NoRedis starts the nodes without --redis (single-node mode, to test
	// the harness itself).
	NoRedis bool
}

// Cluster is a running test cluster. Everything it started is stopped and
// waited for when the test ends.
type Cluster struct {
	t     testing.TB
	Redis *redistest.Server
	Nodes []*Node
	LB    *Balancer
	dir   string

	idsMu  sync.Mutex
	ids    map[string]*Node // cluster node id -> node
	client *redis.Client    // the harness's own Redis client
}

// Start builds the huddle binary (once per test binary), starts redis and
// the nodes, waits until every node answers /healthz, and puts a load
// balancer in front of them.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bin := Binary(t)
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	c := &Cluster{t: t, dir: t.TempDir(), ids: map[string]*Node{}}
	if !opts.NoRedis {
		c.Redis = redistest.Start(t)
	}
	t.Cleanup(c.close)
	for i := range opts.Nodes {
		n := &Node{Name: fmt.Sprintf("n%d", i+1), c: c}
		n.HTTPAddr = freeTCP(t)
		n.MediaAddr = freeUDP(t)
		n.DataDir = filepath.Join(c.dir, n.Name)
		if err := os.MkdirAll(n.DataDir, 0o755); err != nil {
			t.Fatal(err)
		}
		n.args = []string{"serve",
			"--http-addr", n.HTTPAddr,
			"--media-udp-addr", n.MediaAddr,
			"--media-tcp-addr", "off",
			"--turn", "off",
			"--data-dir", n.DataDir,
			"--api-keys", APIKey + ":" + APISecret,
			"--log-level", opts.LogLevel,
		}
		if c.Redis != nil {
			// Node ids are the harness's names, so logs and owner records
			// read n1, n2, ... (the default is random per start).
			n.args = append(n.args, "--redis", c.Redis.URL(), "--"+AdvertiseFlag, n.URL(), "--node-id", n.Name)
		}
		n.args = append(n.args, opts.Args...)
		n.bin = bin
		n.log = newLog(n.Name)
		c.Nodes = append(c.Nodes, n)
	}
	// Start them one after the other: each start is CPU-bound for a moment
	// and the machine is small.
	for _, n := range c.Nodes {
		n.Start()
	}
	if c.Redis != nil {
		for _, n := range c.Nodes {
			c.waitRegistered(n)
		}
	}
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.HTTPAddr
	}
	c.LB = NewBalancer(t, addrs...)
	return c
}

// URL is the load balancer's URL: what clients are given.
func (c *Cluster) URL() string { return c.LB.URL() }

// Node returns the node with this HTTP address or URL, or nil.
func (c *Cluster) Node(addrOrURL string) *Node {
	addr := strings.TrimPrefix(strings.TrimPrefix(addrOrURL, "http://"), "ws://")
	addr = strings.TrimSuffix(addr, "/")
	for _, n := range c.Nodes {
		if n.HTTPAddr == addr {
			return n
		}
	}
	return nil
}

// Token mints a participant token with every grant for room.
func (c *Cluster) Token(identity, room string) string {
	c.t.Helper()
	tok, err := auth.Mint(APIKey, APISecret, auth.Claims{Identity: identity, Name: identity, Room: room, Grants: protocol.AllGrants()}, time.Hour)
	if err != nil {
		c.t.Fatalf("mint token: %v", err)
	}
	return tok
}

// RedisClient is a client of the cluster's redis-server.
func (c *Cluster) RedisClient() *redis.Client { return c.Redis.Client() }

func (c *Cluster) close() {
	for _, n := range c.Nodes {
		n.Kill()
	}
	if c.LB != nil {
		c.LB.Close()
	}
	c.idsMu.Lock()
	if c.client != nil {
		c.client.Close()
	}
	c.idsMu.Unlock()
	keep := os.Getenv("HUDDLE_CLUSTER_LOGS")
	show := c.t.Failed() || os.Getenv("HUDDLE_TEST_LOG") != ""
	for _, n := range c.Nodes {
		lines := n.log.lines()
		if keep != "" {
			path := filepath.Join(keep, strings.ReplaceAll(c.t.Name(), "/", "_")+"-"+n.Name+".log")
			if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				c.t.Logf("keep %s's log: %v", n.Name, err)
			}
		}
		if show {
			c.t.Logf("last lines of %s's log (HUDDLE_CLUSTER_LOGS=dir keeps them all):\n%s", n.Name, strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
	}
}

// WaitFor polls cond every 20 ms until it holds, failing the test after
// timeout; what describes the wait (called only on failure).
func WaitFor(t testing.TB, timeout time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// Binary builds cmd/huddle once per test binary; Cleanup removes it (call
// it from TestMain after m.Run).
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "huddle-clustertest-")
		if build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "huddle")
		out, err := exec.Command("go", "build", "-o", build.bin, "github.com/huddle-rtc/huddle/cmd/huddle").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// Cleanup removes the binary Binary built.
func Cleanup() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

func freeTCP(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func freeUDP(t testing.TB) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// healthy reports whether a node answers /healthz with 200 within timeout.
func healthy(addr string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
