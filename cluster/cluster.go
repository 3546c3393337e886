// Package cluster joins Huddle nodes through one Redis: membership with a
// TTL, atomic room placement with an epoch that fences stale owners, and a
// relay of client connections between nodes over pub/sub. It knows nothing
// of rooms' contents; signaling and the stores build on it.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Config is what Start needs. Client is required; the rest has defaults.
type Config struct {
	Client    *redis.Client // required; the caller owns it
	ID        string        // node id; default a random one
	URL       string        // advertised base URL (http://host:port) for WebSocket/API
	MediaAddr string        // advertised media address, informational
	TTL       time.Duration // membership TTL; default 3s, refreshed every TTL/3
	Load      func() int    // current participants on this node, read at each refresh
	// OnRoomLost: a room this node holds is now owned by someone else (or
	// its record is gone): the caller must drop it. Called from the refresh
	// goroutine: it must return quickly.
	OnRoomLost func(room string)
	// Accept: an edge node opened a relay link to this node. It runs in its
	// own goroutine, which Close waits for: it must return once the link is
	// done. Without Accept, Dial to this node is refused.
	Accept     func(l *Link)
	Logger     *slog.Logger
	Registerer prometheus.Registerer // may be nil

	// Limits; zero means the default.
	MaxLinks       int           // relay links per node, both directions (4096)
	MaxFrame       int           // bytes per relayed frame (256 KiB, the WebSocket limit)
	LinkQueue      int           // frames queued per link, each direction (1024)
	LinkQueueBytes int           // bytes queued per link, each direction (4 MiB)
	OpenTimeout    time.Duration // Dial waits this long for the open-ack (5s)
}

const (
	defaultTTL            = 3 * time.Second
	defaultMaxLinks       = 4096
	defaultMaxFrame       = 256 << 10
	defaultLinkQueue      = 1024
	defaultLinkQueueBytes = 4 << 20
	defaultOpenTimeout    = 5 * time.Second
	// outQueue bounds the relay messages waiting for the publisher; a
	// Send that finds it full closes its link (overflow), never blocks.
	outQueue = 8192
	// outQueueBytes bounds the bytes in that queue: frames may be 256 KiB.
	outQueueBytes = 64 << 20
	// maxRoomLen bounds a room name carried in an open (and in keys).
	maxRoomLen = 256
)

const keyPrefix = "huddle:"

// OwnerKey is the owner record of a room: a HASH with fields "node" (empty
// when released) and "epoch" (decimal, never decreasing). Stores fence
// their writes on HGET epoch: this layout is a contract.
func OwnerKey(room string) string { return keyPrefix + "room:" + room + ":owner" }

func memberKey(id string) string { return keyPrefix + "node:" + id }
func inboxKey(id string) string  { return keyPrefix + "inbox:" + id }

const (
	memberPrefix = keyPrefix + "node:"
	membersIndex = keyPrefix + "nodes" // a SET of ids; a member's key is the truth
)

// Node is this process's place in the cluster.
type Node struct {
	cfg     Config
	rdb     *redis.Client
	id      string
	started time.Time
	log     *slog.Logger
	met     *metrics

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	out      chan outMsg
	outBytes atomic.Int64 // bytes of frames in out
	pubsub   *redis.PubSub

	closeOnce sync.Once
	closeErr  error

	mu          sync.Mutex
	members     []Member
	lastRefresh time.Time // the last refresh that wrote our key and read the members
	incarnation string    // random per Start: tells a restarted node with the same id apart
	closing     bool      // no new links: Close or a crash has begun
	held        map[string]uint64
	dialed      map[uint64]*Link
	accepted    map[acceptKey]*Link
	redisOK     bool
	lastErr     string
	lastErrAt   time.Time

	refreshPaused atomic.Bool // test hook: a node that stops refreshing
	logLimit      rateLimiter // Redis errors
	badMsgLimit   rateLimiter // undecodable relay messages
}

type acceptKey struct {
	peer string
	id   uint64
}

// Start registers the node, subscribes to its relay inbox and starts the
// refresh, receive and publish goroutines. It fails if Redis cannot be
// reached now; later Redis trouble is retried, never fatal.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Client == nil {
		return nil, errors.New("cluster: Config.Client is required")
	}
	if cfg.ID == "" {
		cfg.ID = randomID()
	}
	if err := checkName("node id", cfg.ID); err != nil {
		return nil, err
	}
	setDefaults(&cfg)
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("cluster: metrics: %w", err)
	}
	n := &Node{
		cfg: cfg, rdb: cfg.Client, id: cfg.ID, started: time.Now(),
		log: cfg.Logger.With("node", cfg.ID), met: met,
		out:         make(chan outMsg, outQueue),
		held:        map[string]uint64{},
		dialed:      map[uint64]*Link{},
		accepted:    map[acceptKey]*Link{},
		logLimit:    rateLimiter{every: 10 * time.Second},
		badMsgLimit: rateLimiter{every: 10 * time.Second},
		incarnation: randomID(),
	}
	// Subscribe before registering: a node in the membership is always
	// listening, so a Dial that reads it as live can reach it.
	n.pubsub = n.rdb.Subscribe(ctx, inboxKey(n.id))
	if _, err := n.pubsub.Receive(ctx); err != nil {
		n.pubsub.Close()
		met.unregister()
		return nil, fmt.Errorf("cluster: subscribe to %s: %w", inboxKey(n.id), err)
	}
	if err := n.refresh(ctx); err != nil {
		n.pubsub.Close()
		met.unregister()
		return nil, fmt.Errorf("cluster: register node %s: %w", n.id, err)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.wg.Add(3)
	go n.refreshLoop()
	go n.receiveLoop()
	go n.publishLoop()
	n.log.Info("cluster node started", "url", cfg.URL, "media", cfg.MediaAddr, "ttl", cfg.TTL)
	return n, nil
}

func setDefaults(cfg *Config) {
	if cfg.TTL <= 0 {
		cfg.TTL = defaultTTL
	}
	if cfg.Load == nil {
		cfg.Load = func() int { return 0 }
	}
	if cfg.OnRoomLost == nil {
		cfg.OnRoomLost = func(string) {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxLinks <= 0 {
		cfg.MaxLinks = defaultMaxLinks
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = defaultMaxFrame
	}
	if cfg.LinkQueue <= 0 {
		cfg.LinkQueue = defaultLinkQueue
	}
	if cfg.LinkQueueBytes <= 0 {
		cfg.LinkQueueBytes = defaultLinkQueueBytes
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = defaultOpenTimeout
	}
}

// checkName refuses ids and room names that would make ambiguous keys.
func checkName(what, s string) error {
	if s == "" || len(s) > maxRoomLen {
		return fmt.Errorf("cluster: %s must be 1..%d bytes, got %d", what, maxRoomLen, len(s))
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("cluster: %s %q has a control character", what, s)
		}
	}
	return nil
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ID is this node's id.
func (n *Node) ID() string { return n.id }

// Close deregisters the node (deletes its member key, so its rooms can be
// claimed at once), closes its links with CodeNodeClosing and waits for
// every goroutine it started, Accept callbacks included.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.stop()
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.TTL)
		defer cancel()
		if err := n.rdb.Del(ctx, memberKey(n.id)).Err(); err != nil {
			n.closeErr = fmt.Errorf("cluster: deregister node %s: %w", n.id, err)
		}
		n.rdb.SRem(ctx, membersIndex, n.id)
		n.log.Info("cluster node closed")
	})
	return n.closeErr
}

// stop ends everything without touching the member key: what a crash
// leaves behind. Links are told (best effort) before the publisher stops.
func (n *Node) stop() {
	n.mu.Lock()
	n.closing = true
	n.mu.Unlock()
	for _, l := range n.links() {
		l.Close(CodeNodeClosing, "node shutting down")
	}
	n.cancel()
	n.pubsub.Close()
	n.wg.Wait()
	n.met.unregister()
}

// refreshLoop keeps the membership, the member cache and held rooms true.
func (n *Node) refreshLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if n.refreshPaused.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.TTL/3)
		if err := n.refresh(ctx); err != nil && n.ctx.Err() == nil {
			n.noteError("refresh", err)
		}
		cancel()
	}
}

// refresh is one round: write our member key, read the live members,
// verify the rooms we hold, close links to nodes that left.
func (n *Node) refresh(ctx context.Context) error {
	existed, err := n.register(ctx)
	if err != nil {
		return err
	}
	// Links opened after the members are read must not be judged by
	// them: their peers may have registered just after the read.
	links := n.links()
	members, err := n.readMembers(ctx)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.members = members
	again := !existed && !n.lastRefresh.IsZero()
	n.lastRefresh = time.Now()
	n.redisOK = true
	n.mu.Unlock()
	if again {
		n.log.Warn("cluster membership had expired; registered again and re-verifying held rooms")
	}
	n.met.members.Set(float64(len(members)))
	live := make(map[string]string, len(members)) // id -> incarnation
	for _, m := range members {
		live[m.ID] = m.Incarnation
	}
	for _, l := range links {
		inc, ok := live[l.peer]
		switch {
		case !ok:
			l.closeLocal(CodeNodeGone, "node "+l.peer+" left the cluster", true)
		case l.peerInc != "" && inc != l.peerInc:
			l.closeLocal(CodeNodeGone, "node "+l.peer+" restarted", false)
		}
	}
	return n.verifyHeld(ctx)
}

// noteError records a Redis error for Status and logs it, rate-limited.
func (n *Node) noteError(what string, err error) {
	n.mu.Lock()
	n.redisOK = false
	n.lastErr = what + ": " + err.Error()
	n.lastErrAt = time.Now()
	n.mu.Unlock()
	if suppressed, ok := n.logLimit.allow(); ok {
		n.log.Error("cluster redis error", "op", what, "err", err, "suppressed", suppressed)
	}
}

// Status is the cluster as this node sees it, for /healthz.
type Status struct {
	ID          string    `json:"id"`
	Members     []Member  `json:"members"`
	RedisOK     bool      `json:"redisOk"`    // the last refresh (or relay receive) succeeded
	Registered  bool      `json:"registered"` // our member key was written less than a TTL ago
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	RoomsHeld   int       `json:"roomsHeld"`
	Links       int       `json:"links"`
}

// Status reports membership, Redis health, rooms held and open links.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Status{
		ID: n.id, Members: append([]Member(nil), n.members...),
		RedisOK: n.redisOK, Registered: time.Since(n.lastRefresh) < n.cfg.TTL,
		LastError: n.lastErr, LastErrorAt: n.lastErrAt,
		RoomsHeld: len(n.held), Links: len(n.dialed) + len(n.accepted),
	}
}

// rateLimiter lets one log line through per period and counts the rest.
type rateLimiter struct {
	mu         sync.Mutex
	every      time.Duration
	last       time.Time
	suppressed int
}

func (r *rateLimiter) allow() (suppressed int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.last) >= r.every {
		s := r.suppressed
		r.last, r.suppressed = now, 0
		return s, true
	}
	r.suppressed++
	return 0, false
}
