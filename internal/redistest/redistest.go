// Package redistest starts a real redis-server for tests: on a free
// loopback port, with its data in a temporary directory, AOF on with
// appendfsync always (the setting the cluster's guarantees are stated for).
// Without redis-server the test fails when CI is set and is skipped
// otherwise.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process. Stop, Kill and Restart may be
// called in any order; the process is killed when the test ends.
type Server struct {
	t    testing.TB
	dir  string
	port int
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start runs redis-server and waits until it answers PING. Extra config
// lines ("maxmemory 10mb") are appended to its command line as
// --directive value pairs.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is not installed (CI must install it: .ci/run): %v", err)
		}
		t.Skipf("redis-server not installed: %v", err)
	}
	s := &Server{t: t, dir: t.TempDir(), port: freePort(t)}
	s.args = []string{
		"--port", fmt.Sprint(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", "always",
		"--protected-mode", "no",
	}
	for _, e := range extra {
		if k, v, ok := strings.Cut(e, " "); ok {
			s.args = append(s.args, "--"+k, v)
		}
	}
	s.args = append([]string{bin}, s.args...)
	t.Cleanup(s.Kill)
	s.start()
	return s
}

// Addr is host:port for redis.Options.Addr.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// URL is redis://host:port/0, the form `huddle serve --redis` takes.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a go-redis client closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.t.Cleanup(func() { c.Close() })
	return c
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	out, err := os.Create(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	go func() { cmd.Wait(); out.Close() }()
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer: %v\n%s", s.Addr(), err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts redis-server down the way an operator's restart does
// (SIGTERM: it finishes the AOF) and waits for it to exit.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill ends redis-server with SIGKILL (what it has acknowledged under
// appendfsync always is on disk).
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			break
		}
		if conn, err := net.DialTimeout("tcp", s.Addr(), 50*time.Millisecond); err == nil {
			conn.Close()
			continue
		}
		// The port is closed; wait for the process itself.
	}
}

// Restart starts redis-server again on the same port and data directory
// (after Stop or Kill), and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		s.Stop()
	}
	s.start()
}

// Log returns what redis-server has written to its log so far.
func (s *Server) Log() string {
	f, err := os.Open(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	var b strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String()
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
