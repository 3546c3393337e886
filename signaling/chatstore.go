package signaling

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// maxChatPerRoom bounds what one room keeps on disk; older messages are
// deleted as new ones arrive. maxChatIDs is how many client ids per room
// are remembered to recognise a resent message.
const (
	maxChatPerRoom = 5000
	maxChatIDs     = 1024
)

// ChatStore keeps rooms' chat: BoltChatStore on one node, RedisChatStore
// in a cluster. Post stores a message (assigning its ID) and returns it,
// or, for a sender and client id it has seen, the message stored then
// with dup true. A message is broadcast only after Post returns.
type ChatStore interface {
	Post(room string, msg protocol.ChatMessage) (stored protocol.ChatMessage, dup bool, err error)
	History(room string) ([]protocol.ChatMessage, error) // the newest protocol.ChatHistory, oldest first
	Forget(room string)                                  // the room is gone from this node
	Close() error
}

var _ ChatStore = (*BoltChatStore)(nil)

// BoltChatStore keeps each room's chat in the embedded store, one bucket
// per room, keyed by the bucket's sequence; the client ids it has seen
// are remembered in memory only.
type BoltChatStore struct {
	db      *bolt.DB
	max     int // messages kept per room
	idLimit int // client ids remembered per room

	mu     sync.Mutex
	recent map[string]*dedup // by room: (identity, clientId) -> message
}

// OpenBoltChatStore opens (creating) the bbolt file at path.
func OpenBoltChatStore(path string) (*BoltChatStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open chat store %s: %w", path, err)
	}
	return &BoltChatStore{db: db, max: maxChatPerRoom, idLimit: maxChatIDs, recent: map[string]*dedup{}}, nil
}

// Close implements ChatStore.
func (c *BoltChatStore) Close() error { return c.db.Close() }

// Post implements ChatStore.
func (c *BoltChatStore) Post(room string, msg protocol.ChatMessage) (protocol.ChatMessage, bool, error) {
	c.mu.Lock()
	d := c.recent[room]
	if d == nil {
		d = newDedup(c.idLimit)
		c.recent[room] = d
	}
	key := msg.Identity + "\x00" + msg.ClientID
	if prev, ok := d.get(key); ok && msg.ClientID != "" {
		c.mu.Unlock()
		return prev, true, nil
	}
	c.mu.Unlock()
	err := c.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(room))
		if err != nil {
			return err
		}
		n, _ := b.NextSequence()
		msg.ID = fmt.Sprintf("CH_%d_%s", n, newID("")[:12])
		data, err := json.Marshal(msg)
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(n), data); err != nil {
			return err
		}
		if n > uint64(c.max) {
			return b.Delete(seqKey(n - uint64(c.max)))
		}
		return nil
	})
	if err != nil {
		return msg, false, fmt.Errorf("store chat: %w", err)
	}
	if msg.ClientID != "" {
		c.mu.Lock()
		d.put(key, msg)
		c.mu.Unlock()
	}
	return msg, false, nil
}

// Forget implements ChatStore: it drops a room's memory of client ids
// (its messages stay on disk).
func (c *BoltChatStore) Forget(room string) {
	c.mu.Lock()
	delete(c.recent, room)
	c.mu.Unlock()
}

// History implements ChatStore.
func (c *BoltChatStore) History(room string) ([]protocol.ChatMessage, error) {
	out := []protocol.ChatMessage{}
	err := c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(room))
		if b == nil {
			return nil
		}
		cur := b.Cursor()
		for k, v := cur.Last(); k != nil && len(out) < protocol.ChatHistory; k, v = cur.Prev() {
			var m protocol.ChatMessage
			if json.Unmarshal(v, &m) == nil {
				out = append(out, m)
			}
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if err != nil {
		return nil, fmt.Errorf("chat history of %s: %w", room, err)
	}
	return out, nil
}

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

// dedup remembers the last n client ids of a room, oldest forgotten first.
type dedup struct {
	order []string
	next  int
	m     map[string]protocol.ChatMessage
}

func newDedup(n int) *dedup {
	return &dedup{order: make([]string, 0, n), m: map[string]protocol.ChatMessage{}}
}

func (d *dedup) get(k string) (protocol.ChatMessage, bool) {
	m, ok := d.m[k]
	return m, ok
}

func (d *dedup) put(k string, m protocol.ChatMessage) {
	if _, ok := d.m[k]; ok {
		return
	}
	if len(d.order) < cap(d.order) {
		d.order = append(d.order, k)
	} else {
		delete(d.m, d.order[d.next])
		d.order[d.next] = k
		d.next = (d.next + 1) % len(d.order)
	}
	d.m[k] = m
}
