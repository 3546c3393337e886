package node_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/huddle-rtc/huddle/cluster"
	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestClusterEdgePlacesAgainAfterNotOwner: an edge placed a room on a node
// that, by the time the relay link arrives, no longer owns it (the room
// moved in between). That node refuses the link with CloseNotOwner (4100,
// between nodes only); the edge places the room again, once, and relays
// the join to the new owner: the client joins and never hears 4100 or
// "room moved".
func TestClusterEdgePlacesAgainAfterNotOwner(t *testing.T) {
	rs := redistest.Start(t)
	nodes := startClusterNodes(t, rs, 3)
	edge, stale, owner := nodes[0], nodes[1], nodes[2]
	const room = "placed-again"
	// The record names the stale node (which never served the room), so
	// the edge relays to it.
	if err := rs.Client().HSet(context.Background(), cluster.OwnerKey(room), "node", stale.Cluster().ID(), "epoch", "1").Err(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var arrived []string // the nodes a relay link for the room reached, in order
	node.SetBeforeAccept(func(n *node.Node, r string) {
		if r != room {
			return
		}
		mu.Lock()
		arrived = append(arrived, n.Cluster().ID())
		first := len(arrived) == 1
		mu.Unlock()
		if first {
			takeOver(t, rs, room, owner.Cluster().ID()) // the room moves after the edge looked
		}
	})
	t.Cleanup(func() { node.SetBeforeAccept(nil) })

	_, j := rawJoin(t, edge, &protocol.Join{Version: protocol.Version, Token: clusterToken(t, edge, "roamer", room)})
	if j.Participant.ID == "" {
		t.Fatal("joined without a participant")
	}
	mu.Lock()
	got := slices.Clone(arrived)
	mu.Unlock()
	if want := []string{stale.Cluster().ID(), owner.Cluster().ID()}; !slices.Equal(got, want) {
		t.Fatalf("relay links for the room reached %v, want %v (the stale node, then the owner)", got, want)
	}
	if o := owners(nodes, room); !slices.Equal(o, []int{2}) {
		t.Fatalf("room served by nodes %v, want only the new owner (2)", o)
	}
	if n := owner.Signaling().Participants(); n != 1 {
		t.Fatalf("the owner has %d participants, want the relayed one", n)
	}
}
