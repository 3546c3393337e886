package sdk_test

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// huddleProc is `huddle serve` running as a child process.
type huddleProc struct {
	cmd *exec.Cmd
	url string
}

func buildHuddle(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "huddle")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "build", "-o", bin, "../cmd/huddle").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/huddle: %v\n%s", err, out)
	}
	return bin
}

var runningRE = regexp.MustCompile(`Huddle is running: open (http://\S+)`)

func startHuddle(t *testing.T, bin, dataDir string) *huddleProc {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"HUDDLE_HTTP_ADDR=127.0.0.1:0", "HUDDLE_MEDIA_UDP_ADDR=127.0.0.1:0", "HUDDLE_MEDIA_TCP_ADDR=127.0.0.1:0",
		"HUDDLE_TURN=off", "HUDDLE_DATA_DIR="+dataDir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &huddleProc{cmd: cmd}
	t.Cleanup(func() { p.kill() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() { // keep draining, so the child never blocks on its log
			if m := runningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case p.url = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("huddle serve did not say it was running within 30s")
	}
	return p
}

// kill ends the process with SIGKILL: no shutdown code runs.
func (p *huddleProc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func devToken(t *testing.T, dataDir, identity, room string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dataDir, "dev-key.json"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct{ Key, Secret string }
	if err := json.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(k.Key, k.Secret, auth.Claims{Identity: identity, Name: identity, Room: room, Grants: protocol.AllGrants()}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestDocsSurviveKill: edits acknowledged by a `huddle serve` process are
// all there after it is killed with SIGKILL (mid-typing) and restarted on
// the same data directory.
func TestDocsSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the huddle binary")
	}
	bin := buildHuddle(t)
	dataDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	p1 := startHuddle(t, bin, dataDir)
	a, err := sdk.Join(ctx, p1.url, devToken(t, dataDir, "alice", "durable"), sdk.Options{NoAutoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Leave()
	const initial = "durable: ünïcode 🧪\n"
	info, err := a.Docs().Create(ctx, "durable", initial)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := a.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	type checkpoint struct {
		rev  int64
		text string
	}
	var acked []checkpoint
	rng := rand.New(rand.NewSource(7))
	for round := 0; round < 10; round++ {
		for i := 0; i < 20; i++ {
			if err := randomDocEdit(rng, doc); err != nil {
				t.Fatal(err)
			}
		}
		if err := doc.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, checkpoint{doc.Rev(), doc.Text()})
	}
	last := acked[len(acked)-1]
	// More typing, not waited for, then the plug is pulled.
	for i := 0; i < 30; i++ {
		_ = randomDocEdit(rng, doc)
	}
	p1.kill()

	p2 := startHuddle(t, bin, dataDir)
	b, err := sdk.Join(ctx, p2.url, devToken(t, dataDir, "bob", "durable"), sdk.Options{NoAutoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	bdoc, err := b.Docs().Open(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bdoc.Rev() < last.rev {
		t.Fatalf("after the restart the document is at revision %d, but %d was acknowledged", bdoc.Rev(), last.rev)
	}
	if bdoc.Rev() == last.rev && bdoc.Text() != last.text {
		t.Fatal("after the restart the text differs from the acknowledged one")
	}
	restartedRev, restartedText := bdoc.Rev(), bdoc.Text()
	b.Leave()
	p2.kill()

	// The log on disk replays to every acknowledged checkpoint.
	store, err := collab.OpenBoltStore(filepath.Join(dataDir, "docs"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	recs, err := store.Ops(info.ID, 0, restartedRev)
	if err != nil {
		t.Fatal(err)
	}
	text, next := initial, 0
	for _, r := range recs {
		if text, err = ot.Apply(text, r.Op); err != nil {
			t.Fatal(err)
		}
		for next < len(acked) && acked[next].rev == r.Rev {
			if acked[next].text != text {
				t.Fatalf("acknowledged revision %d: logged text differs", r.Rev)
			}
			next++
		}
	}
	if next != len(acked) || text != restartedText {
		t.Fatalf("checked %d of %d acknowledged checkpoints; replay equals the restarted text: %v", next, len(acked), text == restartedText)
	}
	t.Logf("acknowledged revision %d survived SIGKILL; the restarted server is at %d", last.rev, restartedRev)
}
