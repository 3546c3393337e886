package clustertest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Key layout of package cluster (its documented contract): a room's owner
// record is a hash {node, epoch}; a member is a hash with its url.
func ownerKey(room string) string { return "huddle:room:" + room + ":owner" }
func memberKey(id string) string  { return "huddle:node:" + id }

// Owner is a room's owner record as Redis holds it.
type Owner struct {
	ID    string // cluster node id ("" when released)
	Epoch uint64
}

// Owner reads the room's owner record.
func (c *Cluster) Owner(ctx context.Context, room string) (Owner, error) {
	v, err := c.rdb().HMGet(ctx, ownerKey(room), "node", "epoch").Result()
	if err != nil {
		return Owner{}, fmt.Errorf("read owner of %q: %w", room, err)
	}
	var o Owner
	o.ID, _ = v[0].(string)
	if s, ok := v[1].(string); ok {
		if o.Epoch, err = strconv.ParseUint(s, 10, 64); err != nil {
			return Owner{}, fmt.Errorf("owner of %q: epoch %q: %w", room, s, err)
		}
	}
	return o, nil
}

// OwnerNode is the harness node that owns room now (nil if none or
// unknown), with the record.
func (c *Cluster) OwnerNode(ctx context.Context, room string) (*Node, Owner, error) {
	o, err := c.Owner(ctx, room)
	if err != nil || o.ID == "" {
		return nil, o, err
	}
	return c.NodeByID(ctx, o.ID), o, nil
}

// NodeByID maps a cluster node id to the harness node, through the URL
// its member record advertises. A node's id is remembered once seen, so
// a dead node (whose record expired) is still found.
func (c *Cluster) NodeByID(ctx context.Context, id string) *Node {
	c.idsMu.Lock()
	n := c.ids[id]
	c.idsMu.Unlock()
	if n != nil {
		return n
	}
	url, err := c.rdb().HGet(ctx, memberKey(id), "url").Result()
	if err != nil {
		return nil
	}
	if n = c.Node(url); n != nil {
		c.idsMu.Lock()
		c.ids[id] = n
		c.idsMu.Unlock()
	}
	return n
}

// waitRegistered waits until node n's current process has written its
// member record in Redis (url and start time match), and remembers its id.
func (c *Cluster) waitRegistered(n *Node) {
	c.t.Helper()
	ctx := context.Background()
	n.mu.Lock()
	since := n.startedAt.UnixMilli() - 1000 // clocks are the same machine's; ms rounding
	n.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ids, err := c.rdb().SMembers(ctx, "huddle:nodes").Result()
		for _, id := range ids {
			v, herr := c.rdb().HMGet(ctx, memberKey(id), "url", "started").Result()
			if herr != nil {
				continue
			}
			url, _ := v[0].(string)
			started, _ := v[1].(string)
			ms, _ := strconv.ParseInt(started, 10, 64)
			if c.Node(url) == n && ms >= since {
				c.idsMu.Lock()
				c.ids[id] = n
				c.idsMu.Unlock()
				n.mu.Lock()
				n.id = id
				n.mu.Unlock()
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s did not register in Redis within 30s (%v)\n%s", n.Name, err, n.log.tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ID is the node's cluster id (as last registered).
func (n *Node) ID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.id
}

func (c *Cluster) rdb() *redis.Client {
	c.idsMu.Lock()
	defer c.idsMu.Unlock()
	if c.client == nil {
		c.client = redis.NewClient(&redis.Options{Addr: c.Redis.Addr(), MaxRetries: -1})
	}
	return c.client
}

// OwnerChange is one owner record seen by an OwnerWatch.
type OwnerChange struct {
	At time.Time
	Owner
}

// OwnerWatch polls a room's owner record every 20 ms and keeps each
// change, so a test can check the epochs' order and that no epoch was
// ever given to two nodes. Redis being away leaves a gap, not an error.
type OwnerWatch struct {
	poller
	mu      sync.Mutex
	changes []OwnerChange
}

// WatchOwner starts watching room; the watch stops when the test ends.
func (c *Cluster) WatchOwner(room string) *OwnerWatch {
	w := &OwnerWatch{}
	w.start(20*time.Millisecond, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		o, err := c.Owner(ctx, room)
		cancel()
		if err == nil {
			w.mu.Lock()
			if n := len(w.changes); n == 0 || w.changes[n-1].Owner != o {
				w.changes = append(w.changes, OwnerChange{At: time.Now(), Owner: o})
			}
			w.mu.Unlock()
		}
	})
	c.t.Cleanup(w.Stop)
	return w
}

// Changes returns the owner records seen, in order.
func (w *OwnerWatch) Changes() []OwnerChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]OwnerChange(nil), w.changes...)
}

// Check returns an error unless epochs never went backwards and no epoch
// was ever recorded for two different nodes.
func (w *OwnerWatch) Check() error {
	byEpoch := map[uint64]string{}
	var last uint64
	var errs []error
	for _, ch := range w.Changes() {
		if ch.Epoch < last {
			errs = append(errs, fmt.Errorf("epoch went back from %d to %d at %s", last, ch.Epoch, ch.At.Format(time.StampMilli)))
		}
		last = max(last, ch.Epoch)
		if ch.ID == "" {
			continue
		}
		if prev, ok := byEpoch[ch.Epoch]; ok && prev != ch.ID {
			errs = append(errs, fmt.Errorf("epoch %d held by %s and then by %s", ch.Epoch, prev, ch.ID))
		}
		byEpoch[ch.Epoch] = ch.ID
	}
	return errors.Join(errs...)
}

// HeldWatch polls every node's /healthz (cluster.roomsHeld) in rounds,
// all nodes at once, and records each round in which two nodes said they
// held rooms. In a test with one room that is two owners at once.
type HeldWatch struct {
	poller
	mu     sync.Mutex
	rounds int
	double []string
}

// WatchHeld starts the rounds (every 100 ms); the watch stops when the test
// ends. A node that does not answer (dead, paused) counts as holding
// nothing: it is not acting.
func (c *Cluster) WatchHeld() *HeldWatch {
	w := &HeldWatch{}
	w.start(100*time.Millisecond, func() {
		held := make([]float64, len(c.Nodes))
		var wg sync.WaitGroup
		for i, n := range c.Nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if h := n.Health(); h != nil {
					if cl, ok := h["cluster"].(map[string]any); ok {
						held[i], _ = cl["roomsHeld"].(float64)
					}
				}
			}()
		}
		wg.Wait()
		var holders []string
		for i, h := range held {
			if h > 0 {
				holders = append(holders, c.Nodes[i].Name)
			}
		}
		w.mu.Lock()
		w.rounds++
		if len(holders) > 1 {
			w.double = append(w.double, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), holders))
		}
		w.mu.Unlock()
	})
	c.t.Cleanup(w.Stop)
	return w
}

// Result is how many rounds ran and those in which two nodes held rooms.
func (w *HeldWatch) Result() (rounds int, double []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rounds, append([]string(nil), w.double...)
}

// poller runs one check at a fixed interval on a goroutine of its own
// until Stop, which waits for it.
type poller struct {
	stop chan struct{}
	done chan struct{}
}

func (p *poller) start(every time.Duration, check func()) {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			check()
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// Stop ends the watch and waits for its goroutine.
func (p *poller) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}
