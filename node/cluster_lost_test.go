package node_test

import (
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestClusterJoinDuringRoomLossIsMoved: a join that its node routed to
// itself runs while the node loses the room to another (its refresh finds
// the owner record changed and moves the room's participants). The join
// makes the room anew on the old node; it must be moved too, not left
// there alone, its edits fenced, while the rest of the room meets on the
// new owner (a Redis restart in a full suite did that to one bot for good).
func TestClusterJoinDuringRoomLossIsMoved(t *testing.T) {
	rs := redistest.Start(t)
	nodes := startClusterNodes(t, rs, 2)
	const room = "lost-while-joining"
	anchor, _ := rawJoin(t, nodes[0], &protocol.Join{Version: protocol.Version, Token: clusterToken(t, nodes[0], "anchor", room)})
	o := owners(nodes, room)
	if len(o) != 1 {
		t.Fatalf("room served by %v", o)
	}
	owner, other := nodes[o[0]], nodes[1-o[0]]

	var once sync.Once
	node.SetBeforeLocalJoin(func(n *node.Node, r string) {
		if n != owner || r != room {
			return
		}
		once.Do(func() {
			takeOver(t, rs, room, other.Cluster().ID())
			// On the join's goroutine: no t.Fatal here.
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if _, held := owner.Cluster().Holds(room); !held && !owner.Signaling().HasRoom(room) {
					return
				}
				if time.Now().After(deadline) {
					t.Errorf("the old owner did not move the room's participants within 20 s")
					return
				}
			}
		})
	})
	t.Cleanup(func() { node.SetBeforeLocalJoin(nil) })

	late, _ := rawJoin(t, owner, &protocol.Join{Version: protocol.Version, Token: clusterToken(t, owner, "late", room)})
	for name, ws := range map[string]*websocket.Conn{"the anchor": anchor, "the late joiner": late} {
		if err := waitClosed(ws, protocol.CloseRoomMoved); err != nil {
			t.Errorf("%s's connection: %v", name, err)
		}
	}
	sdktest.WaitFor(t, 10*time.Second, func() string { return "the old owner to hold no copy of the room" }, func() bool {
		return !owner.Signaling().HasRoom(room)
	})
}
