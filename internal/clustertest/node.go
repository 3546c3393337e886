package clustertest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/huddle-rtc/huddle/admin"
)

// Node is one `huddle serve` process. Its addresses and data directory stay
// the same across restarts, like a machine's would.
type Node struct {
	Name      string // n1, n2, ...
	HTTPAddr  string // 127.0.0.1:port
	MediaAddr string // the media UDP address
	DataDir   string

	c    *Cluster
	bin  string
	args []string
	log  *Log

	mu   sync.Mutex
	proc *process
	id   string // cluster node id, once registered

	startedAt time.Time // of the current process
}

type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been waited for
	copied chan struct{} // closed once its stderr has been read to the end
	err    error
}

// URL is the node's own base URL.
func (n *Node) URL() string { return "http://" + n.HTTPAddr }

// Log is everything the node has logged, across restarts.
func (n *Node) Log() *Log { return n.log }

// Admin is an admin API client of this node, signing with the cluster key.
func (n *Node) Admin() *admin.Client {
	return &admin.Client{URL: n.URL(), APIKey: APIKey, APISecret: APISecret,
		HTTPClient: &http.Client{Timeout: 5 * time.Second}}
}

// Start runs the node and waits until /healthz answers (60 s: the machine
// may be busy).
func (n *Node) Start() {
	n.c.t.Helper()
	cmd := exec.Command(n.bin, n.args...)
	cmd.Env = childEnv()
	// A test binary that dies must not leave nodes behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		n.c.t.Fatalf("%s: %v", n.Name, err)
	}
	cmd.Stdout = cmd.Stderr
	n.log.mark(fmt.Sprintf("--- clustertest: %s starting", n.Name))
	if err := cmd.Start(); err != nil {
		n.c.t.Fatalf("start %s: %v", n.Name, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), copied: make(chan struct{})}
	go func() {
		defer close(p.copied)
		n.log.copyFrom(stderr)
	}()
	go func() {
		<-p.copied // Wait closes the pipe: read it to the end first
		p.err = cmd.Wait()
		n.log.mark(fmt.Sprintf("--- clustertest: %s exited: %v", n.Name, p.err))
		close(p.exited)
	}()
	n.mu.Lock()
	n.proc, n.startedAt = p, time.Now()
	n.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for !healthy(n.HTTPAddr, time.Second) {
		select {
		case <-p.exited:
			n.c.t.Fatalf("%s exited before serving: %v\n%s", n.Name, p.err, n.log.tail(40))
		default:
		}
		if time.Now().After(deadline) {
			n.c.t.Fatalf("%s did not answer /healthz within 60s\n%s", n.Name, n.log.tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// childEnv is the test's environment without HUDDLE_* settings, which
// would otherwise reconfigure every node.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HUDDLE_") {
			env = append(env, kv)
		}
	}
	return env
}

// Kill ends the node with SIGKILL (which ends a stopped process too) and
// waits for it.
func (n *Node) Kill() {
	n.mu.Lock()
	p := n.proc
	n.proc = nil
	n.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	// After the exit: whatever the node logged, it logged before this.
	n.log.mark(killMark + " " + time.Now().Format(time.RFC3339Nano))
}

// killMark starts the line the harness adds to a node's log when it has
// killed it, followed by the time.
const killMark = "--- clustertest: killed at"

// Stop pauses the node with SIGSTOP: it keeps its sockets and leases but
// does nothing, like a machine in a long GC pause or a frozen VM.
func (n *Node) Stop() { n.signal(syscall.SIGSTOP, "SIGSTOP") }

// Cont resumes a stopped node with SIGCONT.
func (n *Node) Cont() { n.signal(syscall.SIGCONT, "SIGCONT") }

func (n *Node) signal(sig syscall.Signal, name string) {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		n.c.t.Fatalf("%s %s: not running", name, n.Name)
	}
	n.log.mark("--- clustertest: " + name + " " + n.Name)
	if err := p.cmd.Process.Signal(sig); err != nil {
		n.c.t.Fatalf("%s %s: %v", name, n.Name, err)
	}
}

// Restart kills the node if it runs and starts it again on the same
// addresses and data directory (and, in cluster mode, waits until it has
// registered again).
func (n *Node) Restart() {
	n.c.t.Helper()
	n.Kill()
	n.Start()
	if n.c.Redis != nil {
		n.c.waitRegistered(n)
	}
}

// Running reports whether the node's process is alive (stopped counts as
// alive).
func (n *Node) Running() bool {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Health is the node's /healthz answer decoded into a map (nil if it does
// not answer within 2 s).
func (n *Node) Health() map[string]any {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+"/healthz", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	if json.NewDecoder(resp.Body).Decode(&m) != nil {
		return nil
	}
	return m
}

// Log holds a node's log lines as they arrive, with the time each was read.
type Log struct {
	name    string
	mu      sync.Mutex
	entries []string
	changed chan struct{} // closed and replaced on every new line
}

func newLog(name string) *Log { return &Log{name: name, changed: make(chan struct{})} }

func (l *Log) copyFrom(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	show := os.Getenv("HUDDLE_TEST_LOG") != ""
	for sc.Scan() {
		if show {
			fmt.Fprintf(os.Stderr, "%s: %s\n", l.name, sc.Text())
		}
		l.mark(sc.Text())
	}
}

func (l *Log) mark(line string) {
	l.mu.Lock()
	l.entries = append(l.entries, line)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *Log) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.entries...)
}

func (l *Log) tail(n int) string {
	lines := l.lines()
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Records returns the log's slog lines whose msg is msg, parsed.
func (l *Log) Records(msg string) []Record {
	var out []Record
	for _, line := range l.lines() {
		if r, ok := ParseRecord(line); ok && r.Msg == msg {
			r.Node = l.name
			out = append(out, r)
		}
	}
	return out
}

// Contains reports whether any line contains s.
func (l *Log) Contains(s string) bool {
	for _, line := range l.lines() {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// Len is the number of lines so far; Since(n) returns those after the
// first n, to look only at what a node logged after some moment.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Since returns the lines after the first n.
func (l *Log) Since(n int) []string {
	lines := l.lines()
	return lines[min(n, len(lines)):]
}
