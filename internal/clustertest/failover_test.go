package clustertest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// kill -9 of the node that owns a room while six bots (on all three nodes,
// through the load balancer) exchange video and edit one document: every
// bot gets back into the room on a surviving node by itself, video flows
// again, the document holds every acknowledged edit exactly once, and the
// room never had two owners.
func TestFailoverKillOwner(t *testing.T) {
	c := Start(t, Options{Nodes: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const room = "failover-kill"
	cl := startCall(t, ctx, c, room, 6)
	watch := c.WatchOwner(room)
	held := c.WatchHeld()
	cl.waitAllEdited(time.Now(), 3, 30*time.Second)

	old, rec := cl.ownerNode(ctx)
	before := cl.counters()
	reconnects := map[string]int{}
	for _, b := range cl.bots {
		reconnects[b.id] = b.reconnectCount()
	}
	t.Logf("killing %s, the owner of %s at epoch %d", old.Name, room, rec.Epoch)
	killedAt := time.Now()
	old.Kill()

	// Nothing below makes a bot rejoin: they do it by themselves.
	owner, now := cl.ownerNode(ctx, old)
	if now.Epoch <= rec.Epoch {
		t.Errorf("the new owner %s holds epoch %d, not past %d", owner.Name, now.Epoch, rec.Epoch)
	}
	// Each bot reconnects (OnReconnect is its last step), and then the new
	// owner lists every bot under the id the bot has now.
	WaitFor(t, 90*time.Second, func() string { return "every bot to reconnect by itself" }, func() bool {
		for _, b := range cl.bots {
			if b.reconnectCount() == reconnects[b.id] {
				return false
			}
		}
		return true
	})
	cl.waitInRoomOn(owner, 30*time.Second)
	WaitFor(t, 60*time.Second, func() string { return "fresh video from every bot at every bot: " + cl.videoSummary() }, func() bool {
		return cl.allVideoAfter(before, 25)
	})
	cl.waitAllEdited(killedAt, 3, 60*time.Second)
	t.Logf("after the kill: owner %s at epoch %d; %s", owner.Name, now.Epoch, cl.editSummary())

	cl.finish(ctx)
	if err := watch.Check(); err != nil {
		t.Errorf("owner records: %v\n%v", err, watch.Changes())
	}
	held.Stop()
	rounds, double := held.Result()
	if len(double) > 0 {
		t.Errorf("in %d of %d rounds of /healthz two nodes held the room: %v", len(double), rounds, double)
	}
	checkOwnershipLogs(t, c, room)
}

// A paused (SIGSTOP) owner is replaced, and once resumed it does not
// write: the room moves, the bots follow it, and after SIGCONT the old
// owner drops the room (or is refused by the fence), the owner record is
// not changed by it, and the document still holds every acknowledged edit
// exactly once.
func TestFailoverPausedOwner(t *testing.T) {
	c := Start(t, Options{Nodes: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const room = "failover-pause"
	cl := startCall(t, ctx, c, room, 6)
	watch := c.WatchOwner(room)
	cl.waitAllEdited(time.Now(), 3, 30*time.Second)

	old, rec := cl.ownerNode(ctx)
	before := cl.counters()
	t.Logf("pausing %s, the owner of %s at epoch %d", old.Name, room, rec.Epoch)
	stoppedAt := time.Now()
	old.Stop()

	owner, moved := cl.ownerNode(ctx, old)
	cl.waitInRoomOn(owner, 90*time.Second)
	WaitFor(t, 60*time.Second, func() string { return "fresh video from every bot at every bot: " + cl.videoSummary() }, func() bool {
		return cl.allVideoAfter(before, 25)
	})
	cl.waitAllEdited(stoppedAt, 3, 60*time.Second)
	t.Logf("room moved to %s at epoch %d; resuming %s", owner.Name, moved.Epoch, old.Name)

	mark := old.Log().Len()
	contAt := time.Now()
	old.Cont()
	// The resumed node learns at its next membership refresh that the room
	// is no longer its own (or its first write is fenced).
	WaitFor(t, 30*time.Second, func() string {
		return fmt.Sprintf("%s to drop room %s after SIGCONT; it logged:\n%s", old.Name, room, linesOf(old.Log().Since(mark)))
	}, func() bool { return droppedRoom(old.Log().Since(mark), room) })
	WaitFor(t, 10*time.Second, func() string { return fmt.Sprintf("%s's /healthz to say it holds no room", old.Name) }, func() bool {
		h, _ := old.Health()["cluster"].(map[string]any)
		return h != nil && h["roomsHeld"] == float64(0)
	})
	for _, line := range old.Log().Since(mark) {
		if strings.Contains(line, fencedMark) {
			t.Logf("%s's write was fenced after SIGCONT: %s", old.Name, line)
			break
		}
	}
	// Edits go on for a while beside the resumed node.
	cl.waitAllEdited(time.Now(), 3, 30*time.Second)

	cl.finish(ctx)
	if err := watch.Check(); err != nil {
		t.Errorf("owner records: %v\n%v", err, watch.Changes())
	}
	for _, ch := range watch.Changes() {
		if ch.At.After(contAt) && ch.Owner != moved {
			t.Errorf("the owner record changed after %s resumed: %+v (the new owner had %+v)", old.Name, ch, moved)
		}
	}
	if o, err := c.Owner(ctx, room); err != nil || o != moved {
		t.Errorf("owner record at the end: %+v, %v; want %+v", o, err, moved)
	}
	checkStaleNodeQuiet(t, old, mark, room, moved.Epoch)
}

func linesOf(lines []string) string {
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	s := ""
	for _, l := range lines {
		s += l + "\n"
	}
	return s
}
