package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const roomName = "cluster"
	bot := &echoBot{ready: make(chan struct{})}
	room, err := sdk.Join(ctx, nodes[0].URL(), devToken(t, nodes[0].URL(), "Bot", roomName), sdk.Options{OnTrack: bot.onTrack})
	if err != nil {
		t.Fatalf("bot join: %v", err)
	}
	bot.room = room
	close(bot.ready)
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
