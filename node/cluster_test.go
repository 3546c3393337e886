package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/cluster"
	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/internal/redistest"
	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// startClusterNodes starts n nodes on loopback in cluster mode on one
// Redis, with production defaults otherwise, and waits until each sees all.
func startClusterNodes(t *testing.T, rs *redistest.Server, n int) []*node.Node {
	t.Helper()
	return startClusterNodesWith(t, rs, n, nil)
}

// startClusterNodesWith lets a test change each node's configuration.
func startClusterNodesWith(t *testing.T, rs *redistest.Server, n int, adjust func(*node.Config)) []*node.Node {
	t.Helper()
	nodes := make([]*node.Node, n)
	for i := range nodes {
		logger := slog.New(slog.NewTextHandler(io.Discard, nil))
		if os.Getenv("HUDDLE_TEST_LOG") != "" {
			logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", i)
		}
		cfg := node.Config{
			HTTPAddr: "127.0.0.1:0", MediaUDPAddr: "127.0.0.1:0", MediaTCPAddr: "127.0.0.1:0",
			DataDir: t.TempDir(), Logger: logger, Redis: rs.URL(), NodeID: fmt.Sprintf("n%d", i),
		}
		if adjust != nil {
			adjust(&cfg)
		}
		nd, err := node.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := nd.Start(context.Background()); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		t.Cleanup(func() { nd.Close() })
		nodes[i] = nd
	}
	sdktest.WaitFor(t, 15*time.Second, func() string { return "every node to see the others" }, func() bool {
		for _, nd := range nodes {
			if len(nd.Cluster().Members()) != n {
				return false
			}
		}
		return true
	})
	return nodes
}

// clusterToken mints a token with the cluster's shared dev key.
func clusterToken(t *testing.T, nd *node.Node, identity, room string) string {
	t.Helper()
	key, secret, ok := nd.DevKey()
	if !ok {
		t.Fatal("node is not in dev mode")
	}
	tok, err := auth.Mint(key, secret, auth.Claims{Identity: identity, Name: identity, Room: room, Grants: protocol.AllGrants()}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// packetCounter counts the RTP packets a bot receives, by publisher.
type packetCounter struct {
	mu   sync.Mutex
	from map[string]int
}

func (c *packetCounter) onTrack(rt *sdk.RemoteTrack) {
	for {
		if _, _, err := rt.Track.ReadRTP(); err != nil {
			return
		}
		c.mu.Lock()
		c.from[rt.Participant.ID]++
		c.mu.Unlock()
	}
}

func (c *packetCounter) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.from[id]
}

// owners lists the nodes that serve the room.
func owners(nodes []*node.Node, room string) []int {
	var out []int
	for i, nd := range nodes {
		if nd.Signaling().HasRoom(room) {
			out = append(out, i)
		}
	}
	return out
}

// TestClusterBotsOnThreeNodes: a Redis and three nodes; six bots connect
// two to each node and join one room. The room lives on exactly one node
// (the others relay), every bot receives every other bot's video, and
// every bot's edits to one document are in it exactly once, in the
// document and in the log Redis holds.
func TestClusterBotsOnThreeNodes(t *testing.T) {
	rs := redistest.Start(t)
	nodes := startClusterNodes(t, rs, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const room, bots = "standup", 6
	rooms := make([]*sdk.Room, bots)
	counters := make([]*packetCounter, bots)
	for i := range rooms {
		counters[i] = &packetCounter{from: map[string]int{}}
		nd := nodes[i%len(nodes)]
		r, err := sdk.Join(ctx, nd.URL(), clusterToken(t, nd, fmt.Sprintf("bot%d", i), room), sdk.Options{OnTrack: counters[i].onTrack})
		if err != nil {
			t.Fatalf("bot%d joins through node %d: %v", i, i%len(nodes), err)
		}
		t.Cleanup(func() { r.Leave() })
		rooms[i] = r
		pub, err := sdktest.Publish(r, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
		if err != nil {
			t.Fatalf("bot%d publishes: %v", i, err)
		}
		t.Cleanup(pub.Stop)
	}
	if o := owners(nodes, room); len(o) != 1 {
		t.Fatalf("room served by nodes %v, want exactly one", o)
	}
	owner := owners(nodes, room)[0]
	if got := nodes[owner].Signaling().Participants(); got != bots {
		t.Errorf("the owner node has %d participants, want all %d", got, bots)
	}
	if epoch, ok := nodes[owner].Cluster().Holds(room); !ok || epoch == 0 {
		t.Errorf("the owner node does not hold the room (epoch %d, %v)", epoch, ok)
	}

	checkClusterHealth(t, nodes[(owner+1)%3], 3)

	// Video: every bot receives every other bot's frames, and they keep
	// coming.
	for i := range rooms {
		for j := range rooms {
			if i == j {
				continue
			}
			id := rooms[j].Self().ID
			sdktest.WaitFor(t, 40*time.Second, func() string {
				return fmt.Sprintf("bot%d (node %d) to receive video from bot%d (node %d); owner node %d", i, i%3, j, j%3, owner)
			}, func() bool { return counters[i].count(id) > 20 })
		}
	}

	// One document, edited by all at once: each bot inserts its own
	// markers at the start of the text (the one position that is between
	// markers whatever arrived meanwhile), so that no insert splits
	// another and each marker must appear exactly once.
	info, docs := openSharedDoc(t, ctx, rooms)
	const edits = 25
	var wg sync.WaitGroup
	for i := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range edits {
				if err := docs[i].Insert(0, fmt.Sprintf("<%d.%d>", i, k)); err != nil {
					t.Errorf("bot%d edit %d: %v", i, k, err)
					return
				}
				time.Sleep(time.Duration(i+k%3) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	text := waitEditsOnceEach(t, docs, bots, edits, 30*time.Second)
	// Redis holds the same: the log replays to the text with no op twice.
	store := collab.NewRedisStore(rs.Client(), collab.RedisStoreOptions{})
	recs, err := store.Ops(info.ID, 0, docs[0].Rev())
	if err != nil {
		t.Fatal(err)
	}
	replay, seen := "", map[string]bool{}
	for _, r := range recs {
		key := r.Author + "/" + r.ClientOpID
		if r.ClientOpID != "" && seen[key] {
			t.Errorf("op %s is in the log twice", key)
		}
		seen[key] = true
		if replay, err = ot.Apply(replay, r.Op); err != nil {
			t.Fatalf("replaying the log at revision %d: %v", r.Rev, err)
		}
	}
	if replay != text || int64(len(recs)) != docs[0].Rev() {
		t.Errorf("the log in Redis has %d ops for revision %d and replays to %d code points (the document has %d)", len(recs), docs[0].Rev(), len([]rune(replay)), len([]rune(text)))
	}
}

// TestClusterRoomMovesAndBotsFollow: the room's owner record in Redis is
// taken over by another live node (what a takeover after the owner paused
// past its TTL leaves behind) while six bots, two on each node, edit a
// document. The old owner notices, closes the room's sessions with 4000
// "room moved", and every bot reconnects by itself (through its own node)
// to the room on its new node: video flows again, and every edit is in the
// document exactly once.
func TestClusterRoomMovesAndBotsFollow(t *testing.T) {
	rs := redistest.Start(t)
	nodes := startClusterNodes(t, rs, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	const room, bots = "moving", 6
	rooms := make([]*sdk.Room, bots)
	counters := make([]*packetCounter, bots)
	var reconnects sync.WaitGroup
	reconnects.Add(bots)
	for i := range rooms {
		counters[i] = &packetCounter{from: map[string]int{}}
		nd := nodes[i%len(nodes)]
		var once sync.Once
		r, err := sdk.Join(ctx, nd.URL(), clusterToken(t, nd, fmt.Sprintf("bot%d", i), room), sdk.Options{
			OnTrack:     counters[i].onTrack,
			OnReconnect: func(protocol.Participant) { once.Do(reconnects.Done) },
		})
		if err != nil {
			t.Fatalf("bot%d joins: %v", i, err)
		}
		t.Cleanup(func() { r.Leave() })
		rooms[i] = r
		pub, err := sdktest.Publish(r, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pub.Stop)
	}
	o := owners(nodes, room)
	if len(o) != 1 {
		t.Fatalf("room served by nodes %v, want one", o)
	}
	oldOwner := o[0]
	newOwner := (oldOwner + 1) % len(nodes)

	_, docs := openSharedDoc(t, ctx, rooms)
	// Edits run before, during and after the move.
	const edits = 60
	var wg sync.WaitGroup
	var moved sync.Once
	for i := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range edits {
				// Insert fails only while no document is open (between
				// the drop and the reopen): try again.
				for docs[i].Insert(0, fmt.Sprintf("<%d.%d>", i, k)) != nil {
					if ctx.Err() != nil {
						t.Errorf("bot%d edit %d: %v", i, k, ctx.Err())
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				if i == 0 && k == edits/3 {
					moved.Do(func() { takeOver(t, rs, room, nodes[newOwner].Cluster().ID()) })
				}
				time.Sleep(15 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	waitDone := make(chan struct{})
	go func() { reconnects.Wait(); close(waitDone) }()
	select {
	case <-waitDone:
	case <-ctx.Done():
		t.Fatal("not every bot reconnected after the room moved")
	}
	sdktest.WaitFor(t, 30*time.Second, func() string {
		return fmt.Sprintf("the room to be served by node %d alone (now %v)", newOwner, owners(nodes, room))
	}, func() bool {
		o := owners(nodes, room)
		return len(o) == 1 && o[0] == newOwner && nodes[newOwner].Signaling().Participants() == bots
	})
	// Video flows again, from every bot to every bot.
	for i := range rooms {
		before := map[string]int{}
		for j := range rooms {
			before[rooms[j].Self().ID] = counters[i].count(rooms[j].Self().ID)
		}
		for j := range rooms {
			if i == j {
				continue
			}
			id := rooms[j].Self().ID
			sdktest.WaitFor(t, 40*time.Second, func() string { return fmt.Sprintf("bot%d to receive bot%d's video after the move", i, j) },
				func() bool { return counters[i].count(id) > before[id]+20 })
		}
	}
	waitEditsOnceEach(t, docs, bots, edits, 40*time.Second)
}

// waitEditsOnceEach waits until every copy of the document has its edits
// acknowledged and agrees, then checks that each bot's edit "<i.k>" is in
// the text exactly once. It returns the text.
func waitEditsOnceEach(t *testing.T, docs []*sdk.Document, bots, edits int, timeout time.Duration) string {
	t.Helper()
	sdktest.WaitFor(t, timeout, func() string { return "every edit to be acknowledged and every copy to agree" }, func() bool {
		for _, d := range docs {
			if d.Pending() || d.Text() != docs[0].Text() || d.Rev() != docs[0].Rev() {
				return false
			}
		}
		return true
	})
	text := docs[0].Text()
	for i := range bots {
		for k := range edits {
			if n := strings.Count(text, fmt.Sprintf("<%d.%d>", i, k)); n != 1 {
				t.Errorf("bot%d's edit %d is in the document %d times, want once", i, k, n)
			}
		}
	}
	return text
}

// takeOver makes node the room's owner in Redis at the next epoch, as a
// claim after the owner's membership expired would.
func takeOver(t *testing.T, rs *redistest.Server, room, node string) {
	t.Helper()
	rdb := rs.Client()
	ctx := context.Background()
	epoch, err := rdb.HGet(ctx, cluster.OwnerKey(room), "epoch").Uint64()
	if err != nil {
		t.Errorf("read the room's epoch: %v", err)
		return
	}
	if err := rdb.HSet(ctx, cluster.OwnerKey(room), "node", node, "epoch", fmt.Sprint(epoch+1)).Err(); err != nil {
		t.Errorf("take the room over: %v", err)
	}
}

// checkClusterHealth reads a node's /healthz and /metrics: the members it
// sees, Redis reachable, and the cluster's series.
func checkClusterHealth(t *testing.T, nd *node.Node, members int) {
	t.Helper()
	res, err := http.Get(nd.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Cluster struct {
			Node    string `json:"node"`
			Members []struct {
				ID   string `json:"id"`
				URL  string `json:"url"`
				Self bool   `json:"self"`
			} `json:"members"`
			RedisOK   bool `json:"redisOK"`
			RoomsHeld int  `json:"roomsHeld"`
		} `json:"cluster"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	c := body.Cluster
	selves := 0
	for _, m := range c.Members {
		if m.Self {
			selves++
			if m.ID != c.Node || m.URL != nd.URL() {
				t.Errorf("healthz: self is %+v, want id %q and url %q", m, c.Node, nd.URL())
			}
		}
	}
	if len(c.Members) != members || selves != 1 || !c.RedisOK {
		t.Errorf("healthz cluster: %+v, want %d members, one of them itself, Redis reachable", c, members)
	}
	res, err = http.Get(nd.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	text, _ := io.ReadAll(res.Body)
	for _, want := range []string{fmt.Sprintf("huddle_cluster_members %d", members), "huddle_cluster_redis_up 1", "huddle_cluster_rooms_held "} {
		if !strings.Contains(string(text), want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
}

// rawJoin opens a WebSocket to a node and joins; it returns the socket
// and the joined message.
func rawJoin(t *testing.T, nd *node.Node, join *protocol.Join) (*websocket.Conn, *protocol.Joined) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(nd.URL(), "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	data, _ := protocol.Encode(join)
	if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for joined: %v", err)
		}
		msg, err := protocol.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if j, ok := msg.(*protocol.Joined); ok {
			return ws, j
		}
	}
}

// TestClusterResumeThroughAnotherNode: a participant relayed by one node
// loses its connection and comes back through another node with its
// session id: it resumes on the room's node (same participant), and the
// room's other participant never saw it leave.
func TestClusterResumeThroughAnotherNode(t *testing.T) {
	rs := redistest.Start(t)
	nodes := startClusterNodes(t, rs, 3)
	const room = "resume"
	anchor, _ := rawJoin(t, nodes[0], &protocol.Join{Version: protocol.Version, Token: clusterToken(t, nodes[0], "anchor", room)})
	owner := owners(nodes, room)
	if len(owner) != 1 {
		t.Fatalf("room served by %v", owner)
	}
	edgeA, edgeB := nodes[(owner[0]+1)%3], nodes[(owner[0]+2)%3]
	tok := clusterToken(t, edgeA, "roamer", room)
	first, j1 := rawJoin(t, edgeA, &protocol.Join{Version: protocol.Version, Token: tok})
	first.UnderlyingConn().Close() // no close frame: a lost network
	_, j2 := rawJoin(t, edgeB, &protocol.Join{Version: protocol.Version, Token: tok, SessionID: j1.SessionID})
	if !j2.Resumed || j2.Participant.ID != j1.Participant.ID {
		t.Errorf("through another node: resumed %v as %s, want a resume of %s", j2.Resumed, j2.Participant.ID, j1.Participant.ID)
	}
	if n := nodes[owner[0]].Signaling().Participants(); n != 2 {
		t.Errorf("the owner has %d participants, want 2", n)
	}
	// The anchor saw the roamer join and, at most, go offline: never leave.
	_ = anchor.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	for {
		_, data, err := anchor.ReadMessage()
		if err != nil {
			break // nothing more within the wait
		}
		if msg, _ := protocol.Decode(data); msg != nil {
			if l, ok := msg.(*protocol.ParticipantLeft); ok && l.ParticipantID == j1.Participant.ID {
				t.Errorf("the anchor saw the roamer leave")
			}
		}
	}
}

// TestClusterEdgeSaysRoomMovedWhenOwnerLeaves: when the room's node leaves
// the cluster (here: its membership closes; a killed node's links end the
// same way once it expires), a participant relayed by another node is
// closed with 4000 "room moved: reconnect", the code clients reconnect on
// with the spread.
func TestClusterEdgeSaysRoomMovedWhenOwnerLeaves(t *testing.T) {
	rs := redistest.Start(t)
	nodes := startClusterNodes(t, rs, 3)
	const room = "leaving"
	rawJoin(t, nodes[0], &protocol.Join{Version: protocol.Version, Token: clusterToken(t, nodes[0], "anchor", room)})
	o := owners(nodes, room)
	if len(o) != 1 {
		t.Fatalf("room served by %v", o)
	}
	edge := nodes[(o[0]+1)%3]
	ws, _ := rawJoin(t, edge, &protocol.Join{Version: protocol.Version, Token: clusterToken(t, edge, "roamer", room)})
	if err := nodes[o[0]].Cluster().Close(); err != nil {
		t.Fatal(err)
	}
	if err := waitClosed(ws, protocol.CloseRoomMoved); err != nil {
		t.Fatalf("the relayed participant's connection: %v", err)
	}
}

// waitClosed reads a raw connection until it ends, within 20 s, and says
// how it ended unless it was closed with code.
func waitClosed(ws *websocket.Conn, code int) error {
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			return fmt.Errorf("ended with %v, want close %d", err, code)
		}
		return nil
	}
}

// openSharedDoc creates a document through the first room and opens it in
// every room, logging each document's refusals for a failure's story.
func openSharedDoc(t *testing.T, ctx context.Context, rooms []*sdk.Room) (sdk.DocInfo, []*sdk.Document) {
	t.Helper()
	info, err := rooms[0].Docs().Create(ctx, "notes", "")
	if err != nil {
		t.Fatal(err)
	}
	docs := make([]*sdk.Document, len(rooms))
	for i := range docs {
		if docs[i], err = rooms[i].Docs().Open(ctx, info.ID); err != nil {
			t.Fatalf("bot%d opens the document: %v", i, err)
		}
		docs[i].OnError(func(err error) { t.Logf("bot%d: document: %v", i, err) })
	}
	return info, docs
}
