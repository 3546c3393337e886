package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// RedisChatStore keeps rooms' chat in Redis (cluster mode), so that the
// room's next owner has its history and recognises resent messages. Keys
// per room, beside the documents' (collab.RedisStore):
//
//	huddle:room:<room>:chat       list of message JSON, oldest first, capped
//	huddle:room:<room>:chatseq    counter for message ids
//	huddle:room:<room>:chatids    hash: identity NUL clientId -> message JSON
//	huddle:room:<room>:chatorder  list of those hash fields, newest first, capped
//
// A post is one script: fence check (as the documents', on
// huddle:room:<room>:owner), the client-id lookup, the append and both
// trims; it is acknowledged after Redis replied.
type RedisChatStore struct {
	rdb     *redis.Client
	opts    RedisChatOptions
	max     int // messages kept per room
	idLimit int // client ids remembered per room
}

// RedisChatOptions configure a RedisChatStore.
type RedisChatOptions struct {
	// Fence is the node's ownership epoch of a room, as for
	// collab.RedisStoreOptions; nil: no fencing.
	Fence   func(room string) (epoch uint64, ok bool)
	Timeout time.Duration // bounds each call [3s]
}

// NewRedisChatStore returns a chat store over rdb (the caller's; Close
// leaves it open).
func NewRedisChatStore(rdb *redis.Client, opts RedisChatOptions) *RedisChatStore {
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Second
	}
	return &RedisChatStore{rdb: rdb, opts: opts, max: maxChatPerRoom, idLimit: maxChatIDs}
}

func chatKeys(room string) []string {
	p := "huddle:room:" + room + ":"
	return []string{p + "chat", p + "chatseq", p + "chatids", p + "chatorder", collab.RoomOwnerKey(room)}
}

// KEYS: chat, chatseq, chatids, chatorder, owner. ARGV: epoch ("" = no
// fencing), client key ("" = none), id suffix, the message JSON after its
// empty id value, max messages, max client ids. Returns {dup, json}.
var scriptChatPost = redis.NewScript(`
if ARGV[1] ~= '' then
  local e = redis.call('HGET', KEYS[5], 'epoch')
  if e ~= ARGV[1] then return redis.error_reply('FENCED owner epoch is ' .. tostring(e) .. ', writer holds ' .. ARGV[1]) end
end
if ARGV[2] ~= '' then
  local prev = redis.call('HGET', KEYS[3], ARGV[2])
  if prev then return {1, prev} end
end
local n = redis.call('INCR', KEYS[2])
local m = '{"id":"CH_' .. n .. '_' .. ARGV[3] .. ARGV[4]
redis.call('RPUSH', KEYS[1], m)
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[5]), -1)
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[2], m)
  redis.call('LPUSH', KEYS[4], ARGV[2])
  if redis.call('LLEN', KEYS[4]) > tonumber(ARGV[6]) then
    redis.call('HDEL', KEYS[3], redis.call('RPOP', KEYS[4]))
  end
end
return {0, m}
`)

// emptyID is how encoding/json starts a ChatMessage whose ID is empty (ID
// is its first field); the script puts the id in its place.
var emptyID = []byte(`{"id":""`)

// Post implements ChatStore.
func (c *RedisChatStore) Post(room string, msg protocol.ChatMessage) (protocol.ChatMessage, bool, error) {
	epoch := ""
	if c.opts.Fence != nil {
		e, ok := c.opts.Fence(room)
		if !ok {
			return msg, false, fmt.Errorf("store chat of %s: %w", room, collab.ErrFenced)
		}
		epoch = strconv.FormatUint(e, 10)
	}
	msg.ID = ""
	data, err := json.Marshal(msg)
	if err != nil {
		return msg, false, fmt.Errorf("store chat of %s: encode: %w", room, err)
	}
	if !bytes.HasPrefix(data, emptyID) {
		return msg, false, fmt.Errorf("store chat of %s: encoding does not start with the id", room)
	}
	key := ""
	if msg.ClientID != "" {
		key = msg.Identity + "\x00" + msg.ClientID
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	res, err := scriptChatPost.Run(ctx, c.rdb, chatKeys(room), epoch, key, newID("")[:12], data[len(emptyID)-1:], c.max, c.idLimit).Slice()
	if err != nil {
		return msg, false, chatErr(err, room)
	}
	dup, _ := res[0].(int64)
	stored, _ := res[1].(string)
	var out protocol.ChatMessage
	if err := json.Unmarshal([]byte(stored), &out); err != nil {
		return msg, false, fmt.Errorf("store chat of %s: decode: %w", room, err)
	}
	return out, dup == 1, nil
}

func chatErr(err error, room string) error {
	var re redis.Error
	switch {
	case !errors.As(err, &re):
		// The cause (addresses) is left out: chat.go shows the error to
		// the sender as it is.
		return fmt.Errorf("store chat of %s: %w", room, collab.ErrUnavailable)
	case bytes.Contains([]byte(re.Error()), []byte("FENCED")):
		return fmt.Errorf("store chat of %s: %w: %s", room, collab.ErrFenced, re.Error())
	}
	return fmt.Errorf("store chat of %s: redis: %w", room, err)
}

// History implements ChatStore.
func (c *RedisChatStore) History(room string) ([]protocol.ChatMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	defer cancel()
	vals, err := c.rdb.LRange(ctx, chatKeys(room)[0], -protocol.ChatHistory, -1).Result()
	if err != nil {
		return nil, chatErr(err, room)
	}
	out := make([]protocol.ChatMessage, 0, len(vals))
	for _, v := range vals {
		var m protocol.ChatMessage
		if json.Unmarshal([]byte(v), &m) == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// Forget implements ChatStore: nothing to drop, the client ids stay in
// Redis for the room's next owner (bounded per room).
func (c *RedisChatStore) Forget(string) {}

// Close implements ChatStore; the client stays open.
func (c *RedisChatStore) Close() error { return nil }
