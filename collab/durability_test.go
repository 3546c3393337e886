package collab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab/ot"
)

const childDirEnv = "HUDDLE_COLLAB_DURABILITY_DIR"

// TestDurabilityChild is the process that gets killed: it edits two
// documents through a bbolt-backed service and prints each ack as soon as
// Submit returns it, until SIGKILL. It does nothing in a normal run.
func TestDurabilityChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("helper process for TestDurabilityKill")
	}
	store, err := OpenBoltStore(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(Config{Store: store, SnapshotEvery: 25, KeepOps: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if _, err := svc.CreateDoc(ctx, CreateRequest{ID: id, Room: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	out := bufio.NewWriter(os.Stdout)
	acks := make(chan string, 64)
	for _, id := range []string{"a", "b"} {
		go func(id string) {
			for i := int64(0); ; i++ {
				cid := fmt.Sprintf("%s-%d", id, i)
				ack, err := svc.Submit(ctx, SubmitRequest{DocID: id, Author: "w", ClientOpID: cid, BaseRev: i, Op: ot.Op{}.Retain(int(i)).Insert("é")})
				if err != nil {
					acks <- "error " + err.Error()
					return
				}
				acks <- fmt.Sprintf("ack %s %s %d", id, cid, ack.Rev)
			}
		}(id)
	}
	for line := range acks {
		fmt.Fprintln(out, line)
		out.Flush() // the parent must never see an ack we did not get
	}
}

// TestDurabilityKill re-runs this test binary as TestDurabilityChild, kills
// it with SIGKILL mid-stream (no clean shutdown of service or store), then
// reopens the bbolt file: every op the child saw acknowledged is there.
func TestDurabilityKill(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]map[string]int64{"a": {}, "b": {}}
	sc := bufio.NewScanner(stdout)
	n := 0
	timeout := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timeout.Stop()
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || (f[0] != "ack" && f[0] != "error") {
			continue // test framework chatter
		}
		if f[0] == "error" {
			t.Fatalf("child: %s", sc.Text())
		}
		var rev int64
		fmt.Sscan(f[3], &rev)
		acked[f[1]][f[2]] = rev
		if n++; n == 300 {
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	// Read what was already printed before the kill: those acks count too.
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "ack" {
			var rev int64
			fmt.Sscan(f[3], &rev)
			acked[f[1]][f[2]] = rev
		}
	}
	cmd.Wait()
	if n < 300 {
		t.Fatalf("child printed only %d acks", n)
	}

	store, err := OpenBoltStore(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc := newMemService(t, Config{Store: store, SnapshotEvery: 25, KeepOps: 1000})
	for id, acks := range acked {
		ops, err := store.Ops(id, 0, 1<<62)
		if err != nil {
			t.Fatal(err)
		}
		byCID := map[string]int64{}
		for _, r := range ops {
			byCID[r.ClientOpID] = r.Rev
		}
		for cid, rev := range acks {
			if byCID[cid] != rev {
				t.Errorf("doc %s: acked %s at %d, store has it at %d", id, cid, rev, byCID[cid])
			}
		}
		// The document reloads, consistent with its log, and editing goes on.
		snap := text(t, svc, id)
		if snap.Rev < int64(len(acks)) || len([]rune(snap.Text)) != int(snap.Rev) {
			t.Fatalf("doc %s after crash: rev %d, %d acked, text %d code points", id, snap.Rev, len(acks), len([]rune(snap.Text)))
		}
		submit(t, svc, id, "w", "after-crash", snap.Rev, ot.Op{}.Insert("x"))
	}
	t.Logf("acked before SIGKILL: a=%d b=%d", len(acked["a"]), len(acked["b"]))
}
