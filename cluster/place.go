package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Owner is a room's owner and the epoch of that ownership: stores fence
// writes on the epoch, so a stale owner (paused, partitioned) cannot write.
type Owner struct {
	Node  string
	Epoch uint64
}

// claimScript is the only writer of an owner's node field besides Release.
// It returns the current owner if that owner's member key exists;
// otherwise it makes ARGV[2] the owner with epoch+1, but only if ARGV[2]'s
// member key exists (else status 2: the caller chooses again). The epoch
// is kept across releases, so it never goes backwards.
//
// Reply: {node, epoch (string), status}: 0 existing owner, 1 claimed a
// room with no owner, 3 took over from an owner whose membership expired,
// 2 candidate gone.
var claimScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'node', 'epoch')
local node = cur[1]
local epoch = tonumber(cur[2] or '0') or 0
if node and node ~= '' and redis.call('EXISTS', ARGV[1] .. node) == 1 then
  return {node, string.format('%d', epoch), 0}
end
if redis.call('EXISTS', ARGV[1] .. ARGV[2]) == 0 then
  return {'', string.format('%d', epoch), 2}
end
epoch = epoch + 1
redis.call('HSET', KEYS[1], 'node', ARGV[2], 'epoch', string.format('%d', epoch))
local status = 1
if node and node ~= '' then status = 3 end
return {ARGV[2], string.format('%d', epoch), status}
`)

// releaseScript clears the owner only if it is still (ARGV[1], ARGV[2]);
// the epoch stays.
var releaseScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'node', 'epoch')
if cur[1] == ARGV[1] and cur[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'node', '')
  return 1
end
return 0
`)

// placeAttempts bounds the retries when chosen candidates keep vanishing.
const placeAttempts = 5

// ErrNoMembers: Place found no live node to put a room on (this node's
// own membership has lapsed too, e.g. Redis was just restarted).
var ErrNoMembers = errors.New("cluster: no live member to place the room on")

// Place returns the room's live owner. If it has none (never placed,
// released, or its owner's membership expired) it claims the room for the
// least-loaded live member (ties: this node, then the lowest id) with the
// epoch one past the last. Concurrent callers on any nodes get one answer.
func (n *Node) Place(ctx context.Context, room string) (Owner, error) {
	if err := checkName("room", room); err != nil {
		return Owner{}, err
	}
	tried := map[string]bool{}
	for attempt := 0; attempt < placeAttempts; attempt++ {
		cand, ok := n.candidate(tried)
		if !ok {
			// Our cache may be empty or all tried: read the members afresh.
			ms, err := n.readMembers(ctx)
			if err != nil {
				return Owner{}, fmt.Errorf("cluster: place %q: %w", room, err)
			}
			n.mu.Lock()
			n.members = ms
			n.mu.Unlock()
			clear(tried)
			if cand, ok = n.candidate(tried); !ok {
				return Owner{}, fmt.Errorf("cluster: place %q: %w", room, ErrNoMembers)
			}
		}
		v, err := claimScript.Run(ctx, n.rdb, []string{OwnerKey(room)}, memberPrefix, cand).Slice()
		if err != nil {
			return Owner{}, fmt.Errorf("cluster: place %q: %w", room, err)
		}
		node, _ := v[0].(string)
		es, _ := v[1].(string)
		status, _ := v[2].(int64)
		epoch, err := strconv.ParseUint(es, 10, 64)
		if err != nil {
			return Owner{}, fmt.Errorf("cluster: place %q: bad epoch %q in owner record", room, es)
		}
		switch status {
		case 0:
			n.met.placements.WithLabelValues("existing").Inc()
		case 1, 3:
			n.bumpLoad(node)
			if status == 1 {
				n.met.placements.WithLabelValues("claimed").Inc()
			} else {
				n.met.placements.WithLabelValues("takeover").Inc()
				n.log.Info("room taken over from an expired owner", "room", room, "owner", node, "epoch", epoch)
			}
		case 2:
			tried[cand] = true
			continue
		}
		return Owner{Node: node, Epoch: epoch}, nil
	}
	return Owner{}, fmt.Errorf("cluster: place %q: %d candidates vanished while claiming", room, placeAttempts)
}

// candidate is the least-loaded cached member not yet tried.
func (n *Node) candidate(tried map[string]bool) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var best *Member
	for i := range n.members {
		m := &n.members[i]
		if tried[m.ID] {
			continue
		}
		if best == nil || m.Load < best.Load ||
			(m.Load == best.Load && (m.Self && !best.Self || m.Self == best.Self && m.ID < best.ID)) {
			best = m
		}
	}
	if best == nil {
		return "", false
	}
	return best.ID, true
}

// bumpLoad counts a claimed room against its node in our cache until the
// next refresh, so a burst of placements from one node spreads out.
func (n *Node) bumpLoad(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range n.members {
		if n.members[i].ID == id {
			n.members[i].Load++
		}
	}
}

// Hold records that this node serves room at epoch. Each refresh reads
// the owner record again and calls OnRoomLost if it changed.
func (n *Node) Hold(room string, epoch uint64) {
	n.mu.Lock()
	prev, had := n.held[room]
	n.held[room] = epoch
	n.mu.Unlock()
	if !had || prev != epoch {
		// One line per tenure; with "room released" and "room lost" the
		// logs say which node held a room when (the failover tests
		// check from them that no two nodes ever did at once).
		n.log.Info("room held", "room", room, "epoch", epoch)
	}
}

// Holds returns the epoch this node holds room at: the fence value for
// stores.
func (n *Node) Holds(room string) (epoch uint64, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	epoch, ok = n.held[room]
	return epoch, ok
}

// Release clears the owner record if it is still (this node, epoch) and
// forgets the room; the epoch counter stays for the next claim.
func (n *Node) Release(ctx context.Context, room string, epoch uint64) error {
	n.mu.Lock()
	e, held := n.held[room]
	if held && e == epoch {
		delete(n.held, room)
	}
	n.mu.Unlock()
	if held && e == epoch {
		n.log.Info("room released", "room", room, "epoch", epoch)
	}
	if err := releaseScript.Run(ctx, n.rdb, []string{OwnerKey(room)}, n.id, strconv.FormatUint(epoch, 10)).Err(); err != nil {
		return fmt.Errorf("cluster: release %q at epoch %d: %w", room, epoch, err)
	}
	return nil
}

// verifyHeld reads the owner record of every held room in one pipeline and
// forgets (and reports) each that is not (this node, its epoch).
func (n *Node) verifyHeld(ctx context.Context) error {
	n.mu.Lock()
	rooms := make([]string, 0, len(n.held))
	epochs := make([]uint64, 0, len(n.held))
	for r, e := range n.held {
		rooms = append(rooms, r)
		epochs = append(epochs, e)
	}
	n.mu.Unlock()
	if len(rooms) == 0 {
		return nil
	}
	pipe := n.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(rooms))
	for i, r := range rooms {
		cmds[i] = pipe.HMGet(ctx, OwnerKey(r), "node", "epoch")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("verify %d held rooms: %w", len(rooms), err)
	}
	var lost []string
	n.mu.Lock()
	for i, r := range rooms {
		v := cmds[i].Val()
		node, _ := v[0].(string)
		es, _ := v[1].(string)
		if e, held := n.held[r]; !held || e != epochs[i] {
			continue // released or held again at another epoch meanwhile
		}
		if node != n.id || es != strconv.FormatUint(epochs[i], 10) {
			delete(n.held, r)
			lost = append(lost, r)
		}
	}
	n.mu.Unlock()
	for _, r := range lost {
		n.met.roomsLost.Inc()
		n.log.Warn("room lost: its owner record names another node or epoch", "room", r)
		n.cfg.OnRoomLost(r)
	}
	return nil
}
