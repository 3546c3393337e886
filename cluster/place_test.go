package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/prometheus/client_golang/prometheus"
)

// Many goroutines on four nodes place the same rooms at once: each room
// gets exactly one owner, at epoch 1, and every caller sees that owner.
func TestPlaceRaceOneOwner(t *testing.T) {
	srv := redistest.Start(t)
	var nodes []*Node
	for i := range 4 {
		nodes = append(nodes, startNode(t, srv, Config{ID: fmt.Sprintf("n%d", i)}))
	}
	for _, n := range nodes {
		waitFor(t, 5*testTTL, "four members", func() bool { return len(n.Members()) == 4 })
	}
	const rooms, callers = 10, 48
	answers := make([][]Owner, rooms)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for c := range callers {
		wg.Go(func() {
			<-start
			for r := range rooms {
				o, err := nodes[c%len(nodes)].Place(context.Background(), fmt.Sprintf("room-%d", r))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				answers[r] = append(answers[r], o)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	rdb := srv.Client()
	for r := range rooms {
		rec, err := rdb.HGetAll(context.Background(), OwnerKey(fmt.Sprintf("room-%d", r))).Result()
		if err != nil {
			t.Fatal(err)
		}
		if rec["epoch"] != "1" || rec["node"] == "" {
			t.Fatalf("room-%d record %v: want one claim at epoch 1", r, rec)
		}
		if len(answers[r]) != callers {
			t.Fatalf("room-%d: %d answers", r, len(answers[r]))
		}
		for _, o := range answers[r] {
			if o != (Owner{rec["node"], 1}) {
				t.Fatalf("room-%d: a caller got %+v, the record says %v", r, o, rec)
			}
		}
	}
}

// The least-loaded node gets a new room; on a tie the caller keeps it.
func TestPlaceChoosesLeastLoaded(t *testing.T) {
	srv := redistest.Start(t)
	load := func(v int) func() int { return func() int { return v } }
	a := startNode(t, srv, Config{ID: "a", Load: load(5)})
	startNode(t, srv, Config{ID: "b", Load: load(1)})
	c := startNode(t, srv, Config{ID: "c", Load: load(1)})
	waitFor(t, 5*testTTL, "three members", func() bool { return len(a.Members()) == 3 && len(c.Members()) == 3 })
	if o, err := a.Place(ctxT(t), "r1"); err != nil || o.Node != "b" {
		t.Fatalf("a placed r1 on %+v (%v); want b, the least loaded with the lowest id", o, err)
	}
	// c's cache still has b at 1 and itself at 1: the tie goes to c.
	if o, err := c.Place(ctxT(t), "r2"); err != nil || o.Node != "c" {
		t.Fatalf("c placed r2 on %+v (%v); want c itself on a tie", o, err)
	}
	if _, err := a.Place(ctxT(t), ""); err == nil {
		t.Fatal("Place accepted an empty room name")
	}
}

// An owner's room is not taken over while its membership lives; after it
// expires the next Place takes the room over with the next epoch.
func TestTakeoverOnlyAfterExpiry(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	reg := prometheus.NewRegistry()
	a := startNode(t, srv, Config{ID: "a"})
	b := startNode(t, srv, Config{ID: "b", Load: func() int { return 10 }, Registerer: reg})
	waitFor(t, 5*testTTL, "two members", func() bool { return len(b.Members()) == 2 })
	o, err := b.Place(ctxT(t), "room")
	if err != nil || o != (Owner{"a", 1}) {
		t.Fatalf("first Place %+v %v; want a at epoch 1", o, err)
	}
	a.crashForTest()
	// Until a's key expires every Place answers a. Its key vanishes once
	// and is never written again, so "it exists after Place returned"
	// means it existed while the script ran.
	for {
		o, err := b.Place(ctxT(t), "room")
		if err != nil {
			t.Fatal(err)
		}
		alive, err := rdb.Exists(context.Background(), memberKey("a")).Result()
		if err != nil {
			t.Fatal(err)
		}
		if alive == 1 {
			if o != (Owner{"a", 1}) {
				t.Fatalf("Place moved the room to %+v while a's membership lived", o)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if o.Node == "a" {
			continue // a expired between the script and EXISTS
		}
		if o != (Owner{"b", 2}) {
			t.Fatalf("takeover gave %+v; want b at epoch 2", o)
		}
		break
	}
	if got := gather(t, reg, "huddle_cluster_placements_total", "result=takeover"); got != 1 {
		t.Fatalf("takeover counter %v", got)
	}
	if o, _ := b.Place(ctxT(t), "room"); o != (Owner{"b", 2}) {
		t.Fatalf("Place after takeover %+v", o)
	}
}

// Release clears the owner but keeps the epoch, so the next claim is
// epoch+1; a stale Release (wrong epoch or node) changes nothing.
func TestReleaseThenPlace(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	a := startNode(t, srv, Config{ID: "a"})
	o, err := a.Place(ctxT(t), "room")
	if err != nil || o != (Owner{"a", 1}) {
		t.Fatalf("Place %+v %v", o, err)
	}
	a.Hold("room", 1)
	if err := a.Release(ctxT(t), "room", 7); err != nil {
		t.Fatal(err)
	}
	if node, _ := rdb.HGet(context.Background(), OwnerKey("room"), "node").Result(); node != "a" {
		t.Fatalf("a Release with the wrong epoch cleared the owner: %q", node)
	}
	if err := a.Release(ctxT(t), "room", 1); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Holds("room"); ok {
		t.Fatal("still held after Release")
	}
	rec, _ := rdb.HGetAll(context.Background(), OwnerKey("room")).Result()
	if rec["node"] != "" || rec["epoch"] != "1" {
		t.Fatalf("record after Release %v; want no node, epoch 1", rec)
	}
	for want := uint64(2); want <= 4; want++ {
		o, err := a.Place(ctxT(t), "room")
		if err != nil || o != (Owner{"a", want}) {
			t.Fatalf("Place after Release %+v %v; want epoch %d", o, err, want)
		}
		if err := a.Release(ctxT(t), "room", want); err != nil {
			t.Fatal(err)
		}
	}
}

// A node whose refresh stopped past its TTL (SIGSTOP) while another node
// took its room over learns it on its first refresh after resuming:
// OnRoomLost fires and Holds says no. Rooms still its own stay held.
func TestHoldLostAfterPause(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	lost := make(chan string, 4)
	reg := prometheus.NewRegistry()
	a := startNode(t, srv, Config{ID: "a", OnRoomLost: func(r string) { lost <- r }, Registerer: reg})
	b := startNode(t, srv, Config{ID: "b", Load: func() int { return 10 }})
	waitFor(t, 5*testTTL, "two members", func() bool { return len(b.Members()) == 2 })
	for _, r := range []string{"moved", "kept"} {
		o, err := a.Place(ctxT(t), r)
		if err != nil || o.Node != "a" {
			t.Fatalf("Place %s: %+v %v", r, o, err)
		}
		a.Hold(r, o.Epoch)
	}
	a.pauseRefreshForTest(true)
	waitFor(t, 10*testTTL, "a's membership to expire", func() bool {
		n, err := rdb.Exists(context.Background(), memberKey("a")).Result()
		return err == nil && n == 0
	})
	o, err := b.Place(ctxT(t), "moved")
	if err != nil || o != (Owner{"b", 2}) {
		t.Fatalf("b's takeover %+v %v", o, err)
	}
	if e, ok := a.Holds("moved"); !ok || e != 1 {
		t.Fatal("a forgot the room before it could read the owner record")
	}
	a.pauseRefreshForTest(false)
	select {
	case r := <-lost:
		if r != "moved" {
			t.Fatalf("OnRoomLost(%q)", r)
		}
	case <-time.After(10 * testTTL):
		t.Fatal("OnRoomLost did not fire after the pause")
	}
	if _, ok := a.Holds("moved"); ok {
		t.Fatal("Holds still true for the lost room")
	}
	if e, ok := a.Holds("kept"); !ok || e != 1 {
		t.Fatalf("the room nobody took was dropped: %d %v", e, ok)
	}
	waitFor(t, 5*testTTL, "a to be a member again", func() bool { return len(b.Members()) == 2 })
	if got := gather(t, reg, "huddle_cluster_rooms_lost_total", ""); got != 1 {
		t.Fatalf("rooms lost counter %v", got)
	}
	select {
	case r := <-lost:
		t.Fatalf("second OnRoomLost(%q)", r)
	default:
	}
	if e, _ := rdb.HGet(context.Background(), OwnerKey("moved"), "epoch").Result(); e != strconv.Itoa(2) {
		t.Fatalf("epoch %s", e)
	}
}

// A node whose own membership is gone (and no other node is alive) cannot
// place a room: a clear error, not a claim for a dead node. Its next
// refresh registers it again and placement works.
func TestPlaceWithNoLiveMember(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	a := startNode(t, srv, Config{ID: "a"})
	a.pauseRefreshForTest(true)
	if err := rdb.Del(context.Background(), memberKey("a")).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Place(ctxT(t), "room"); !errors.Is(err, ErrNoMembers) {
		t.Fatalf("Place with no live member: %v", err)
	}
	if n, _ := rdb.Exists(context.Background(), OwnerKey("room")).Result(); n != 0 {
		t.Fatal("an owner record was written for a dead node")
	}
	a.pauseRefreshForTest(false)
	waitFor(t, 10*testTTL, "a to register again", func() bool { return len(a.Members()) == 1 })
	if o, err := a.Place(ctxT(t), "room"); err != nil || o != (Owner{"a", 1}) {
		t.Fatalf("Place after re-registering: %+v %v", o, err)
	}
}

// When an owner expires, the survivors racing to place its room agree on
// one new owner at epoch 2.
func TestTakeoverRaceOneNewOwner(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	dead := startNode(t, srv, Config{ID: "dead"})
	var live []*Node
	for i := range 3 {
		live = append(live, startNode(t, srv, Config{ID: fmt.Sprintf("n%d", i), Load: func() int { return 10 }}))
	}
	for _, n := range live {
		waitFor(t, 5*testTTL, "four members", func() bool { return len(n.Members()) == 4 })
	}
	const rooms = 8
	for r := range rooms {
		if o, err := live[0].Place(ctxT(t), fmt.Sprintf("r%d", r)); err != nil || o != (Owner{"dead", 1}) {
			t.Fatalf("Place r%d: %+v %v; want the unloaded node", r, o, err)
		}
	}
	dead.crashForTest()
	waitFor(t, 10*testTTL, "the dead node's key to expire", func() bool {
		n, err := rdb.Exists(context.Background(), memberKey("dead")).Result()
		return err == nil && n == 0
	})
	var mu sync.Mutex
	got := map[string]map[Owner]int{}
	var wg sync.WaitGroup
	for c := range 24 {
		wg.Go(func() {
			for r := range rooms {
				room := fmt.Sprintf("r%d", r)
				o, err := live[c%len(live)].Place(context.Background(), room)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if got[room] == nil {
					got[room] = map[Owner]int{}
				}
				got[room][o]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for r := range rooms {
		room := fmt.Sprintf("r%d", r)
		if len(got[room]) != 1 {
			t.Fatalf("%s: callers saw %v", room, got[room])
		}
		for o := range got[room] {
			if o.Epoch != 2 || o.Node == "dead" {
				t.Fatalf("%s: new owner %+v; want a survivor at epoch 2", room, o)
			}
		}
	}
}
