package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/cluster"
	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
)

// TestClusterPageOnNonOwnerNode: three nodes on one Redis. A bot joins
// through the first node, which places the room on some node; a person
// then opens the page of a node that does not own the room and joins by
// typing. That node relays the page's signaling to the owner, the page's
// media goes to the owner's media address, and the two see each other's
// video.
func TestClusterPageOnNonOwnerNode(t *testing.T) {
	nodes, _ := startThreeNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const roomName = "cluster"
	bot, room := joinEchoBot(t, ctx, nodes[0].URL(), roomName)
	defer room.Leave()
	botID := room.Self().ID
	owner := -1
	for i, nd := range nodes {
		if nd.Signaling().HasRoom(roomName) {
			owner = i
		}
	}
	if owner < 0 {
		t.Fatal("no node serves the room after the bot joined")
	}
	edge := nodes[(owner+1)%len(nodes)]

	alice := newBrowser(t, "alice")
	alice.dumpLogsOnFailure()
	aliceID := joinByTyping(t, alice, edge.URL()+"/", "Alice", roomName)
	if edge.Signaling().HasRoom(roomName) {
		t.Fatalf("the page's node serves the room too (owner is node %d)", owner)
	}
	if n := nodes[owner].Signaling().Participants(); n != 2 {
		t.Errorf("the owner node has %d participants, want the bot and the page", n)
	}
	waitFor(t, 30*time.Second, "the bot to receive the page's video through the owner", func() (bool, string) {
		from, _, received, sent, err := bot.counts()
		if err != nil {
			t.Fatalf("bot: %v", err)
		}
		return from == aliceID && received > 10, fmt.Sprintf("from=%q received=%d sent=%d", from, received, sent)
	})
	waitVideoFlowing(t, alice, botID, "Bot")
	waitTile(t, alice, botID, "Bot")
}

// TestClusterPageFollowsMovedRoom: a page relayed by a non-owner node is
// in a call with a bot when the room's ownership moves to the third node
// (as after the owner paused past its TTL). The old owner closes the
// room's sessions with 4000; the page reconnects by itself through its
// node, lands in the room on the new owner, and sees the bot's video
// again.
func TestClusterPageFollowsMovedRoom(t *testing.T) {
	nodes, rs := startThreeNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const roomName = "moving"
	_, room := joinEchoBot(t, ctx, nodes[0].URL(), roomName)
	defer room.Leave()
	owner := -1
	for i, nd := range nodes {
		if nd.Signaling().HasRoom(roomName) {
			owner = i
		}
	}
	if owner < 0 {
		t.Fatal("no node serves the room")
	}
	edge, next := nodes[(owner+1)%3], nodes[(owner+2)%3]
	alice := newBrowser(t, "alice")
	alice.dumpLogsOnFailure()
	aliceID := joinByTyping(t, alice, edge.URL()+"/", "Alice", roomName)
	waitVideoFlowing(t, alice, room.Self().ID, "Bot")

	// The room's record now names the third node, one epoch on.
	rdb := rs.Client()
	key := cluster.OwnerKey(roomName)
	epoch, err := rdb.HGet(ctx, key, "epoch").Uint64()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, key, "node", next.Cluster().ID(), "epoch", fmt.Sprint(epoch+1)).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the page and the bot to be in the room on its new node", func() (bool, string) {
		id, _ := eval[string](alice, `window.huddle.participantId`)
		state, _ := eval[string](alice, `window.huddle.state`)
		return next.Signaling().Participants() == 2 && id != aliceID && state == "joined",
			fmt.Sprintf("new owner has %d participants; page %s as %q", next.Signaling().Participants(), state, id)
	})
	if nodes[owner].Signaling().HasRoom(roomName) || edge.Signaling().HasRoom(roomName) {
		t.Error("the old owner or the page's node still serves the room")
	}
	// Media on the new node: a second echo bot (the first one echoes only
	// the track it saw first, which ended with the move) receives the
	// page's video and the page decodes the bot's.
	bot2 := &echoBot{ready: make(chan struct{})}
	room2, err := sdk.Join(ctx, nodes[owner].URL(), devToken(t, nodes[owner].URL(), "Bot2", roomName), sdk.Options{OnTrack: bot2.onTrack})
	if err != nil {
		t.Fatalf("second bot join: %v", err)
	}
	bot2.room = room2
	close(bot2.ready)
	defer room2.Leave()
	newID, _ := eval[string](alice, `window.huddle.participantId`)
	waitFor(t, 30*time.Second, "the second bot to receive the page's video on the new node", func() (bool, string) {
		from, _, received, _, err := bot2.counts()
		if err != nil {
			t.Fatalf("bot2: %v", err)
		}
		return from == newID && received > 10, fmt.Sprintf("from=%q received=%d", from, received)
	})
	waitVideoFlowing(t, alice, room2.Self().ID, "Bot2")
}

// startThreeNodes starts three nodes on one Redis and waits until each
// sees the three members.
func startThreeNodes(t *testing.T) ([]*node.Node, *redistest.Server) {
	t.Helper()
	rs := redistest.Start(t)
	nodes := make([]*node.Node, 3)
	for i := range nodes {
		nodes[i] = startServerWith(t, func(c *node.Config) { c.Redis, c.NodeID = rs.URL(), fmt.Sprintf("n%d", i) })
	}
	waitFor(t, 15*time.Second, "every node to see the three members", func() (bool, string) {
		for i, nd := range nodes {
			if n := len(nd.Cluster().Members()); n != len(nodes) {
				return false, fmt.Sprintf("node %d sees %d", i, n)
			}
		}
		return true, ""
	})
	return nodes, rs
}

// joinEchoBot joins an echo bot to room through the node at url.
func joinEchoBot(t *testing.T, ctx context.Context, url, room string) (*echoBot, *sdk.Room) {
	t.Helper()
	bot := &echoBot{ready: make(chan struct{})}
	r, err := sdk.Join(ctx, url, devToken(t, url, "Bot", room), sdk.Options{OnTrack: bot.onTrack})
	if err != nil {
		t.Fatalf("bot join: %v", err)
	}
	bot.room = r
	close(bot.ready)
	return bot, r
}
