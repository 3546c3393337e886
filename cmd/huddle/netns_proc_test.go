package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// netnsProc is a child process started inside a namespace with
// `ip netns exec` (which enters the namespace and execs the command, so the
// PID is the child's own). Its stdout lines starting with "NETNS " are
// kept; the rest of its output is kept for failure messages.
type netnsProc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// signalStop: stop sends SIGTERM at once (a server does not read stdin).
	signalStop bool

	mu     sync.Mutex
	last   map[string]string // the last line of each kind ("status", "error", ...)
	output strings.Builder   // everything, for failure messages
	url    string            // the server's "Huddle is running" URL
	urlCh  chan string
	exited chan struct{}
	err    error // after exited
}

// startInNetns runs argv in namespace ns with env added to a copy of this
// process's environment stripped of HUDDLE_* (so that a developer's own
// settings cannot change the test). It is stopped in t.Cleanup: stdin is
// closed (bots leave and exit), then SIGTERM, then SIGKILL.
func startInNetns(t *testing.T, name, ns string, env []string, argv ...string) *netnsProc {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HUDDLE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	// If this test process dies without its cleanups, the kernel kills the
	// child; bots also exit when their stdin closes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &netnsProc{name: name, cmd: cmd, last: map[string]string{}, urlCh: make(chan string, 1), exited: make(chan struct{})}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", name, ns, err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); p.read(stdout) }()
	go func() { defer readers.Done(); p.read(stderr) }()
	go func() {
		readers.Wait()
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *netnsProc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.output.WriteString(line + "\n")
		if rest, ok := strings.CutPrefix(line, "NETNS "); ok {
			kind, _, _ := strings.Cut(rest, " ")
			p.last[kind] = rest
		}
		p.mu.Unlock()
		if m := urlLine.FindStringSubmatch(line); m != nil {
			select {
			case p.urlCh <- m[1]:
			default:
			}
		}
	}
}

// stop ends the process: stdin closed (or, with signalStop, SIGTERM), then
// SIGTERM after 5 s, then SIGKILL after 10 s more.
func (p *netnsProc) stop(t *testing.T) {
	p.stdin.Close()
	if p.signalStop {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.exited:
		return
	case <-time.After(5 * time.Second):
	}
	t.Logf("%s (pid %d) still runs after 5 s; sending SIGTERM", p.name, p.cmd.Process.Pid)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return
	case <-time.After(10 * time.Second):
	}
	t.Logf("%s (pid %d) ignored SIGTERM; killing it", p.name, p.cmd.Process.Pid)
	p.cmd.Process.Kill()
	<-p.exited
}

// stopAll stops processes in parallel.
func stopAll(t *testing.T, procs ...*netnsProc) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(t) }()
	}
	wg.Wait()
}

// terminate sends SIGTERM and waits for the exit.
func (p *netnsProc) terminate(timeout time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s did not exit within %v of SIGTERM", p.name, timeout)
	}
}

// waitURL waits for the server's "Huddle is running: open URL" line.
func (p *netnsProc) waitURL(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case u := <-p.urlCh:
		return u
	case <-p.exited:
		t.Fatalf("%s exited before printing its URL:\n%s", p.name, p.logs())
	case <-time.After(timeout):
		t.Fatalf("%s printed no URL within %v:\n%s", p.name, timeout, p.logs())
	}
	return ""
}

// lastLine is the latest "NETNS <kind> ..." line, without the prefix.
func (p *netnsProc) lastLine(kind string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last[kind]
}

// status is the latest status line as key=value pairs (nil before one).
func (p *netnsProc) status() map[string]string {
	line := p.lastLine("status")
	if line == "" {
		return nil
	}
	return parseKV(line)
}

func (p *netnsProc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *netnsProc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// parseKV parses "kind k1=v1 k2=v2".
func parseKV(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}
