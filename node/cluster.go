package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/huddle-rtc/huddle/cluster"
	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/auth"
)

// This file is cluster mode (Config.Redis, docs/CLUSTER.md): the node joins
// the membership, places rooms, relays joins for rooms of other nodes to
// them, serves relayed participants of its own rooms, and gives rooms up
// when they move.

// clusterCallTimeout bounds one placement or release in Redis.
const clusterCallTimeout = 5 * time.Second

// clustered is the node's cluster state; nil without Config.Redis.
type clustered struct {
	rdb  *redis.Client
	node *cluster.Node

	mu      sync.Mutex
	pending map[string]int // local joins under way and relay links, by room
}

// openRedis connects to the configured Redis and checks that it answers.
func openRedis(ctx context.Context, rawURL string) (*redis.Client, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(ctx, clusterCallTimeout)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", opts.Addr, err)
	}
	return rdb, nil
}

// devKeyKey holds the cluster's dev-mode key, so that a token minted by
// one node verifies on all.
const devKeyKey = "huddle:devkey"

// sharedDevKey offers this node's dev key to the cluster and returns the
// one the cluster has (the first node's).
func sharedDevKey(ctx context.Context, rdb *redis.Client, mine devKey) (devKey, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterCallTimeout)
	defer cancel()
	data, _ := json.Marshal(mine)
	if err := rdb.SetNX(ctx, devKeyKey, data, 0).Err(); err != nil {
		return devKey{}, fmt.Errorf("share dev key: %w", err)
	}
	got, err := rdb.Get(ctx, devKeyKey).Bytes()
	if err != nil {
		return devKey{}, fmt.Errorf("read shared dev key: %w", err)
	}
	var k devKey
	if err := json.Unmarshal(got, &k); err != nil || k.Key == "" || k.Secret == "" {
		return devKey{}, fmt.Errorf("shared dev key %s in redis is corrupt (delete it to make a new one): %v", devKeyKey, err)
	}
	return k, nil
}

// joinCluster connects to Redis, takes the cluster's dev key (in dev
// mode) and joins the membership.
func (n *Node) joinCluster(ctx context.Context) error {
	rdb, err := openRedis(ctx, n.cfg.Redis)
	if err != nil {
		return fmt.Errorf("cluster mode: %w", err)
	}
	n.rdb = rdb
	if n.devMode {
		k, err := sharedDevKey(ctx, rdb, n.dev)
		if err != nil {
			return err
		}
		n.dev = k
		n.keys = auth.Keys{k.Key: k.Secret}
	}
	return n.startCluster()
}

// startCluster joins the membership. The HTTP listener and media are open
// (their addresses are advertised); the rooms are not made yet, so links
// accepted now wait for them (n.ready).
func (n *Node) startCluster() error {
	advertise := n.cfg.AdvertiseURL
	if advertise == "" {
		advertise = n.URL()
	}
	media := n.media.UDPAddr().String()
	if adv := n.media.Advertised(); len(adv) > 0 {
		_, port, _ := net.SplitHostPort(media)
		media = net.JoinHostPort(adv[0], port)
	}
	c := &clustered{rdb: n.rdb, pending: map[string]int{}}
	node, err := cluster.Start(n.ctx, cluster.Config{
		Client:         n.rdb,
		ID:             n.cfg.NodeID,
		URL:            advertise,
		MediaAddr:      media,
		TTL:            n.cfg.ClusterTTL,
		LinkQueueBytes: n.cfg.ClusterLinkQueueBytes,
		Load:           n.load,
		OnRoomLost:     n.roomLost,
		Accept:         n.accept,
		Logger:         n.log.With("part", "cluster"),
		Registerer:     n.reg,
	})
	if err != nil {
		return fmt.Errorf("join cluster: %w", err)
	}
	c.node = node
	n.cluster = c
	// The cluster package counts members, links and frames; what this
	// node holds and whether Redis answers come from its status.
	n.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "huddle_cluster_rooms_held", Help: "Rooms this node owns (holds at an epoch)."},
			func() float64 { return float64(node.Status().RoomsHeld) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "huddle_cluster_redis_up", Help: "1 when this node's last refresh reached Redis."},
			func() float64 {
				if node.Status().RedisOK {
					return 1
				}
				return 0
			}),
	)
	if u, err := url.Parse(advertise); err == nil {
		n.relayHost = u.Host
	}
	n.log.Info("cluster mode: joined", "node", node.ID(), "advertise", advertise, "media", media)
	return nil
}

// Cluster is the node's cluster membership, or nil without Config.Redis
// (for tests and tools).
func (n *Node) Cluster() *cluster.Node {
	if n.cluster == nil {
		return nil
	}
	return n.cluster.node
}

// load is this node's participant count, for placement.
func (n *Node) load() int {
	select {
	case <-n.ready:
		return n.sig.Participants()
	default:
		return 0
	}
}

// fence gives the documents store this node's epoch for a room it holds.
func (n *Node) fence(room string) (uint64, bool) {
	if n.cluster == nil {
		return 0, false
	}
	return n.cluster.node.Holds(room)
}

// Route places a room for a join that reached this node (signaling.Router).
func (n *Node) Route(ctx context.Context, room string, join []byte) (signaling.Relay, func(), error) {
	c := n.cluster
	ctx, cancel := context.WithTimeout(ctx, clusterCallTimeout)
	defer cancel()
	c.begin(room) // no release while we decide
	if _, ok := c.node.Holds(room); ok {
		// Ours already: no round trip to Redis (and a reconnect to a room
		// we serve works while Redis is away). Were it lost meanwhile, the
		// next refresh finds out and moves the room.
		beforeLocalJoin(n, room)
		return nil, func() { n.end(room) }, nil
	}
	o, err := c.node.Place(ctx, room)
	if err != nil {
		n.end(room)
		return nil, nil, fmt.Errorf("place room: %w", err)
	}
	if o.Node == c.node.ID() {
		c.node.Hold(room, o.Epoch)
		beforeLocalJoin(n, room)
		return nil, func() { n.end(room) }, nil
	}
	n.end(room)
	link, err := c.node.Dial(ctx, o.Node, room, join)
	if err != nil {
		return nil, nil, fmt.Errorf("relay to node %s: %w", o.Node, err)
	}
	return link, nil, nil
}

// Joined moves the room again when a join served here finished in a room
// this node no longer holds (signaling.Router). The refresh that found the
// room lost moved the participants it had, but a join already routed here
// made the room anew after that, and nothing else would ever move it: a
// Redis restart once left a participant alone on the old node, its edits
// refused as fenced, while the others met on the new owner.
func (n *Node) Joined(room string) {
	if _, ok := n.cluster.node.Holds(room); ok || !n.sig.HasRoom(room) {
		return
	}
	n.log.Warn("cluster: a join finished in a room this node lost meanwhile; moving it", "room", room)
	n.roomLost(room)
}

// accept serves a participant another node relays to us: we must own the
// room (else the edge places it again), then the session runs over the
// link until it ends. The cluster waits for accept at Close.
func (n *Node) accept(l *cluster.Link) {
	select {
	case <-n.ready:
	case <-l.Done():
		return
	}
	room := l.Room()
	if h := beforeAccept.Load(); h != nil {
		(*h)(n, room)
	}
	c := n.cluster
	c.begin(room)
	defer n.end(room)
	if _, ok := c.node.Holds(room); !ok {
		// An edge placed the room on us and we have not served it yet:
		// Place confirms the claim it made for us, with its epoch.
		ctx, cancel := context.WithTimeout(n.ctx, clusterCallTimeout)
		o, err := c.node.Place(ctx, room)
		cancel()
		if err != nil || o.Node != c.node.ID() {
			l.Close(signaling.CloseNotOwner, "not the room's node: place again")
			return
		}
		c.node.Hold(room, o.Epoch)
	}
	t := newLinkTransport(l)
	n.sig.Serve(t, signaling.Client{Remote: "relay from node " + l.Peer(), Host: n.relayHost, First: l.First(), Relayed: true})
	<-l.Done()
}

// beforeAccept, when set (tests), runs as a relay link arrives, before the
// node checks that it owns the room: a test moves the room meanwhile.
var beforeAccept atomic.Pointer[func(n *Node, room string)]

// localJoinHook, when set (tests), runs when Route has decided that this
// node serves a join, before the join runs: a test loses the room meanwhile.
var localJoinHook atomic.Pointer[func(n *Node, room string)]

func beforeLocalJoin(n *Node, room string) {
	if h := localJoinHook.Load(); h != nil {
		(*h)(n, room)
	}
}

// begin and end bracket work that needs the room held here.
func (c *clustered) begin(room string) {
	c.mu.Lock()
	c.pending[room]++
	c.mu.Unlock()
}

func (n *Node) end(room string) {
	c := n.cluster
	c.mu.Lock()
	if c.pending[room]--; c.pending[room] <= 0 {
		delete(c.pending, room)
	}
	c.mu.Unlock()
	n.maybeRelease(room)
}

// maybeRelease gives a room up in Redis once nobody is in it here and no
// join or relay for it is under way, so that its next join places it by
// load again.
func (n *Node) maybeRelease(room string) {
	c := n.cluster
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[room] > 0 || n.sig.HasRoom(room) {
		return
	}
	epoch, ok := c.node.Holds(room)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, clusterCallTimeout)
	defer cancel()
	if err := c.node.Release(ctx, room, epoch); err != nil && !errors.Is(err, context.Canceled) {
		n.log.Warn("cluster: release room", "room", room, "err", err)
	}
}

// roomLost: another node owns the room now (we paused, or Redis lost our
// record). Its participants here are told to reconnect; the cluster calls
// this from its refresh loop, so the work runs on a goroutine of the node.
func (n *Node) roomLost(room string) {
	select {
	case <-n.ready:
	default:
		return // no rooms yet
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.sig.MoveRoom(room)
		// Its documents go too (their writes would be fenced anyway).
		ctx, cancel := context.WithTimeout(n.ctx, clusterCallTimeout)
		defer cancel()
		if err := n.docs.ReleaseRoom(ctx, room); err != nil {
			n.log.Warn("cluster: unload a lost room's documents", "room", room, "err", err)
		}
	}()
}

// clusterHealth is the cluster as this node sees it, for /healthz.
func (n *Node) clusterHealth() map[string]any {
	st := n.cluster.node.Status()
	members := make([]map[string]any, 0, len(st.Members))
	for _, m := range st.Members {
		members = append(members, map[string]any{"id": m.ID, "url": m.URL, "mediaAddr": m.MediaAddr, "load": m.Load, "started": m.Started, "self": m.Self})
	}
	out := map[string]any{"node": st.ID, "members": members, "redisOK": st.RedisOK, "registered": st.Registered, "roomsHeld": st.RoomsHeld, "links": st.Links}
	if st.LastError != "" {
		out["lastError"], out["lastErrorAt"] = st.LastError, st.LastErrorAt
	}
	return out
}

// closeCluster leaves the membership and closes the Redis client, after the
// rooms and stores have closed.
func (n *Node) closeCluster() {
	if n.cluster != nil && n.cluster.node != nil {
		if err := n.cluster.node.Close(); err != nil {
			n.log.Warn("leave cluster", "err", err)
		}
	}
	if n.rdb != nil {
		_ = n.rdb.Close()
	}
}
