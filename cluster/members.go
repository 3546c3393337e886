package cluster

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Member is one live node as of the last refresh.
type Member struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	MediaAddr   string    `json:"mediaAddr"`
	Load        int       `json:"load"`
	Started     time.Time `json:"started"`
	Self        bool      `json:"self,omitempty"`
	Incarnation string    `json:"incarnation"` // random per process start
}

// registerScript writes a member key with its TTL and indexes it, in one
// step, and says whether the key already existed (0: first start, or it
// expired while we were paused or Redis was away).
var registerScript = redis.NewScript(`
local existed = redis.call('EXISTS', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'url', ARGV[2], 'media', ARGV[3],
  'load', ARGV[4], 'started', ARGV[5], 'inc', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('SADD', KEYS[2], ARGV[1])
return existed
`)

// membersScript returns the hashes of every indexed member whose key is
// still there and drops the rest from the index. Atomic with
// registerScript, so a node re-registering is never dropped.
var membersScript = redis.NewScript(`
local ids = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, id in ipairs(ids) do
  local h = redis.call('HGETALL', ARGV[1] .. id)
  if #h == 0 then
    redis.call('SREM', KEYS[1], id)
  else
    out[#out + 1] = h
  end
end
return out
`)

func (n *Node) register(ctx context.Context) (existed bool, err error) {
	v, err := registerScript.Run(ctx, n.rdb,
		[]string{memberKey(n.id), membersIndex},
		n.id, n.cfg.URL, n.cfg.MediaAddr, n.cfg.Load(),
		n.started.UnixMilli(), n.incarnation, n.cfg.TTL.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("write member key: %w", err)
	}
	return v == 1, nil
}

func (n *Node) readMembers(ctx context.Context) ([]Member, error) {
	v, err := membersScript.Run(ctx, n.rdb, []string{membersIndex}, memberPrefix).Slice()
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	out := make([]Member, 0, len(v))
	for _, h := range v {
		kv, ok := h.([]any)
		if !ok {
			return nil, fmt.Errorf("read members: unexpected reply %T", h)
		}
		f := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			k, _ := kv[i].(string)
			val, _ := kv[i+1].(string)
			f[k] = val
		}
		load, _ := strconv.Atoi(f["load"])
		ms, _ := strconv.ParseInt(f["started"], 10, 64)
		out = append(out, Member{
			ID: f["id"], URL: f["url"], MediaAddr: f["media"], Load: load,
			Started: time.UnixMilli(ms), Self: f["id"] == n.id, Incarnation: f["inc"],
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Members returns the live nodes as of the last refresh, sorted by id.
func (n *Node) Members() []Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Member(nil), n.members...)
}

// memberLocked returns the cached member with this id; n.mu is held.
func (n *Node) memberLocked(id string) (Member, bool) {
	for _, m := range n.members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}
