package clustertest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// What the nodes log about a room's ownership (package node and cluster).
// Each carries room= and, where it has one, epoch=.
var (
	heldMsgs = []string{"room held"}
	lostMsgs = []string{"room lost: its owner record names another node or epoch", "room released", "room lost"}
	// fencedMark is in a node's log when the store refused its write
	// because another node holds the room now (collab.ErrFenced).
	fencedMark = "no longer owns the room"
)

// holding is one node's tenure of a room, from its "held" line to its
// "lost"/"released" line or its death.
type holding struct {
	node       string
	epoch      int64
	start, end time.Time // end is zero while it lasts
}

func (h holding) String() string {
	return fmt.Sprintf("%s@%d %s-%s", h.node, h.epoch, stamp(h.start), stamp(h.end))
}

// holdings reads every node's log for its tenures of room. A killed node's
// tenure ends at the kill.
func holdings(c *Cluster, room string) []holding {
	var out []holding
	for _, n := range c.Nodes {
		var open []holding
		closeAll := func(at time.Time) {
			for _, h := range open {
				h.end = at
				out = append(out, h)
			}
			open = nil
		}
		for _, line := range n.log.lines() {
			if strings.HasPrefix(line, killMark) {
				at, _ := time.Parse(time.RFC3339Nano, strings.TrimSpace(strings.TrimPrefix(line, killMark)))
				closeAll(at)
				continue
			}
			r, ok := ParseRecord(line)
			if !ok || r.Attr("room") != room {
				continue
			}
			switch {
			case slices.Contains(heldMsgs, r.Msg):
				open = append(open, holding{node: n.Name, epoch: r.Int("epoch"), start: r.Time})
			case slices.Contains(lostMsgs, r.Msg):
				closeAll(r.Time)
			}
		}
		out = append(out, open...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// checkOwnershipLogs asserts from the nodes' logs that the room was held by
// at most one node at any moment, with increasing epochs, and at least
// once.
func checkOwnershipLogs(t testing.TB, c *Cluster, room string) {
	t.Helper()
	hs := holdings(c, room)
	if len(hs) == 0 {
		t.Errorf("no node logged holding room %s (%v)", room, heldMsgs)
		return
	}
	for i, a := range hs {
		for _, b := range hs[i+1:] {
			if a.node == b.node {
				continue
			}
			if a.end.IsZero() || b.start.Before(a.end) {
				t.Errorf("room %s held by %s (epoch %d, %s to %s) and by %s (epoch %d from %s) at once",
					room, a.node, a.epoch, stamp(a.start), stamp(a.end), b.node, b.epoch, stamp(b.start))
			}
			if b.epoch <= a.epoch {
				t.Errorf("room %s: %s held epoch %d after %s held epoch %d", room, b.node, b.epoch, a.node, a.epoch)
			}
		}
	}
	t.Logf("room %s's tenures: %v", room, hs)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "now"
	}
	return t.Format("15:04:05.000")
}

// droppedRoom reports whether the lines show the node giving up room (it
// noticed another owner) or a store refusing its write by the fence.
func droppedRoom(lines []string, room string) bool {
	for _, line := range lines {
		if r, ok := ParseRecord(line); ok && r.Attr("room") == room && slices.Contains(lostMsgs, r.Msg) {
			return true
		}
		if strings.Contains(line, fencedMark) && strings.Contains(line, room) {
			return true
		}
	}
	return false
}

// checkStaleNodeQuiet asserts that a resumed old owner did not take the
// room again after mark: no "held" line for it.
func checkStaleNodeQuiet(t testing.TB, n *Node, mark int, room string, epoch uint64) {
	t.Helper()
	for _, line := range n.log.Since(mark) {
		r, ok := ParseRecord(line)
		if ok && r.Attr("room") == room && slices.Contains(heldMsgs, r.Msg) {
			t.Errorf("%s took room %s again after it resumed (the owner holds epoch %d): %s", n.Name, room, epoch, line)
		}
	}
}
