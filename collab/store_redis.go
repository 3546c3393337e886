package collab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is the Store of cluster mode: documents live in Redis, so
// that whichever node owns a room can load them, and an op is acknowledged
// only after Redis has replied to the script that appended it (what that
// reply guarantees depends on Redis's persistence settings: docs/CLUSTER.md).
// Key layout (<id> a document id, <room> a room name):
//
//	huddle:doc:<id>:meta      hash: meta (DocMeta JSON), room, head (last
//	                          committed revision), first (revision of ops[0])
//	huddle:doc:<id>:ops       list: OpRecord JSON, element i is revision first+i
//	huddle:doc:<id>:snaps     sorted set: score rev, member {"rev","t"} JSON
//	huddle:doc:<id>:snaptext  hash: rev -> Snapshot JSON
//	huddle:doc:<id>:versions  hash: name -> Version JSON
//	huddle:doc:<id>:comments  hash: thread id -> CommentThread JSON
//	huddle:room:<room>:docs   set of the room's document ids
//	huddle:room:<room>:owner  hash: node, epoch (written by package cluster;
//	                          read here to fence writes)
//
// Every suffix is one word without a colon, so no two ids share a key.
// The ops list and the snapshots are compacted by Commit exactly as in
// BoltStore (DropOpsBefore, KeepSnapshots), so nothing grows without
// bound that does not on one node. A room's scripts touch keys of the
// document and of its room, so the layout assumes one Redis (or a
// primary with replicas), not Redis Cluster.
type RedisStore struct {
	rdb  *redis.Client
	opts RedisStoreOptions

	mu    sync.Mutex
	rooms map[string]string // document id -> room (immutable), for the fence
}

// RedisStoreOptions configure a RedisStore.
type RedisStoreOptions struct {
	// Fence gives this node's ownership epoch for a room; ok false means
	// the node holds none (every write is then refused with ErrFenced).
	// Nil turns fencing off (tests, a lone node).
	Fence func(room string) (epoch uint64, ok bool)
	// Timeout bounds each store call, so that writes during an outage fail
	// with ErrUnavailable instead of hanging [3s]. It reaches a socket
	// read only if the client has ContextTimeoutEnabled; otherwise the
	// client's ReadTimeout (3s by default) bounds a read instead.
	Timeout time.Duration
}

// maxRoomCache bounds the document -> room cache; it is emptied when full
// (a miss costs one HGET).
const maxRoomCache = 1 << 14

// NewRedisStore returns a store over rdb, which stays the caller's: Close
// does not close it.
func NewRedisStore(rdb *redis.Client, opts RedisStoreOptions) *RedisStore {
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Second
	}
	return &RedisStore{rdb: rdb, opts: opts, rooms: map[string]string{}}
}

type docKeys struct{ meta, ops, snaps, snaptext, versions, comments string }

func keysOf(id string) docKeys {
	p := "huddle:doc:" + id + ":"
	return docKeys{p + "meta", p + "ops", p + "snaps", p + "snaptext", p + "versions", p + "comments"}
}

func roomDocsKey(room string) string { return "huddle:room:" + room + ":docs" }

// RoomOwnerKey is the hash (fields "node" and "epoch", decimal) that
// records which node owns a room; package cluster writes it.
func RoomOwnerKey(room string) string { return "huddle:room:" + room + ":owner" }

// epoch returns the fencing argument for a write to room: "" without
// fencing, else the node's epoch; ErrFenced when the node holds none.
func (s *RedisStore) epoch(room string) (string, error) {
	if s.opts.Fence == nil {
		return "", nil
	}
	e, ok := s.opts.Fence(room)
	if !ok {
		return "", fmt.Errorf("room %q: %w", room, ErrFenced)
	}
	return strconv.FormatUint(e, 10), nil
}

func (s *RedisStore) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opts.Timeout)
}

// unavailable are Redis error replies that mean "not now" rather than
// "no": loading, a failed fsync or RDB write, a replica, a busy script.
var unavailable = []string{"LOADING", "MISCONF", "READONLY", "BUSY", "TRYAGAIN", "MASTERDOWN", "NOREPLICAS", "CLUSTERDOWN"}

// redisErr maps a script's or command's error to the service's sentinels.
func redisErr(err error, what string) error {
	if err == nil {
		return nil
	}
	var re redis.Error
	if !errors.As(err, &re) || errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("%s: %w: %v", what, ErrUnavailable, err) // network, timeout, closed pool
	}
	msg := err.Error()
	word, rest := replyWord(err)
	switch word {
	case "NODOC":
		return fmt.Errorf("%s: %w", what, ErrUnknownDoc)
	case "FENCED", "ROOM":
		return fmt.Errorf("%s: %w: %s", what, ErrFenced, rest)
	case "CONFLICT":
		return fmt.Errorf("%s: %w: %s", what, ErrConflict, rest)
	}
	for _, u := range unavailable {
		if word == u {
			return fmt.Errorf("%s: %w: %s", what, ErrUnavailable, msg)
		}
	}
	return fmt.Errorf("%s: redis: %w", what, err)
}

// replyWord splits a script's error reply into its code and the rest
// (Redis may put "ERR " before a one-word reply).
func replyWord(err error) (word, rest string) {
	var re redis.Error
	if !errors.As(err, &re) {
		return "", ""
	}
	word, rest, _ = strings.Cut(strings.TrimPrefix(re.Error(), "ERR "), " ")
	return word, rest
}

// room returns a document's room, from the cache or Redis.
func (s *RedisStore) room(id string) (string, error) {
	s.mu.Lock()
	r, ok := s.rooms[id]
	s.mu.Unlock()
	if ok {
		return r, nil
	}
	ctx, cancel := s.ctx()
	defer cancel()
	r, err := s.rdb.HGet(ctx, keysOf(id).meta, "room").Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("document %q: %w", id, ErrUnknownDoc)
	}
	if err != nil {
		return "", redisErr(err, "room of "+id)
	}
	s.remember(id, r)
	return r, nil
}

func (s *RedisStore) remember(id, room string) {
	s.mu.Lock()
	if len(s.rooms) >= maxRoomCache {
		clear(s.rooms)
	}
	s.rooms[id] = room
	s.mu.Unlock()
}

func (s *RedisStore) forget(id string) {
	s.mu.Lock()
	delete(s.rooms, id)
	s.mu.Unlock()
}

// write runs a fenced script on document id's room; a ROOM or missing
// refusal drops the cached room (the id may have been deleted and made
// again elsewhere).
func (s *RedisStore) write(id, what string, sc *redis.Script, keys func(owner string) []string, args ...any) error {
	room, err := s.room(id)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	epoch, err := s.epoch(room)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	err = sc.Run(ctx, s.rdb, keys(RoomOwnerKey(room)), append([]any{epoch, room}, args...)...).Err()
	if err = redisErr(err, what); errors.Is(err, ErrFenced) || errors.Is(err, ErrUnknownDoc) {
		s.forget(id)
	}
	return err
}

type snapIndex struct {
	Rev  int64     `json:"rev"`
	Time time.Time `json:"t"`
}

// CreateDoc implements Store.
func (s *RedisStore) CreateDoc(meta DocMeta, initial Snapshot) error {
	what := "create document " + meta.ID
	epoch, err := s.epoch(meta.Room)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	mj, err1 := json.Marshal(meta)
	ij, err2 := json.Marshal(snapIndex{initial.Rev, initial.Time})
	sj, err3 := json.Marshal(initial)
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	k := keysOf(meta.ID)
	ctx, cancel := s.ctx()
	defer cancel()
	err = scriptCreate.Run(ctx, s.rdb, []string{k.meta, k.snaps, k.snaptext, roomDocsKey(meta.Room), RoomOwnerKey(meta.Room)},
		epoch, meta.Room, mj, initial.Rev, ij, sj, meta.ID).Err()
	if w, _ := replyWord(err); w == "EXISTS" {
		return fmt.Errorf("document %q: %w", meta.ID, ErrDocExists)
	}
	if err == nil {
		s.remember(meta.ID, meta.Room)
	}
	return redisErr(err, what)
}

// UpdateDoc implements Store. The room of a document never changes.
func (s *RedisStore) UpdateDoc(meta DocMeta) error {
	mj, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("update document %s: %w", meta.ID, err)
	}
	k := keysOf(meta.ID)
	return s.write(meta.ID, "update document "+meta.ID, scriptUpdate,
		func(owner string) []string { return []string{k.meta, owner} }, mj)
}

// Doc implements Store.
func (s *RedisStore) Doc(id string) (DocMeta, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	v, err := s.rdb.HGet(ctx, keysOf(id).meta, "meta").Bytes()
	if errors.Is(err, redis.Nil) {
		return DocMeta{}, fmt.Errorf("document %q: %w", id, ErrUnknownDoc)
	}
	if err != nil {
		return DocMeta{}, redisErr(err, "document "+id)
	}
	var m DocMeta
	if err := json.Unmarshal(v, &m); err != nil {
		return DocMeta{}, fmt.Errorf("document %s: %w", id, err)
	}
	return m, nil
}

// Docs implements Store: the room's set, then each document's meta (a
// document deleted in between is left out).
func (s *RedisStore) Docs(room string) ([]DocMeta, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	ids, err := s.rdb.SMembers(ctx, roomDocsKey(room)).Result()
	if err != nil {
		return nil, redisErr(err, "documents of room "+room)
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, keysOf(id).meta, "meta")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisErr(err, "documents of room "+room)
	}
	var out []DocMeta
	for _, c := range cmds {
		v, err := c.Bytes()
		if err != nil {
			continue // deleted since SMEMBERS
		}
		var m DocMeta
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, fmt.Errorf("documents of room %s: %w", room, err)
		}
		out = append(out, m)
	}
	sortDocs(out)
	return out, nil
}

// DeleteDoc implements Store.
func (s *RedisStore) DeleteDoc(id string) error {
	room, err := s.room(id)
	if err != nil {
		return fmt.Errorf("delete document %s: %w", id, err)
	}
	k := keysOf(id)
	return s.write(id, "delete document "+id, scriptDelete, func(owner string) []string {
		return []string{k.meta, k.ops, k.snaps, k.snaptext, k.versions, k.comments, roomDocsKey(room), owner}
	}, id)
}

// Commit implements Store: one script appends the ops, saves the snapshot
// and compacts, after checking the fence and that the first op follows
// the stored head (ErrConflict otherwise). Ops must be contiguous.
func (s *RedisStore) Commit(docID string, c Commit) error {
	what := "commit " + docID
	args := make([]any, 0, 6+len(c.Ops))
	var firstRev int64
	if len(c.Ops) > 0 {
		firstRev = c.Ops[0].Rev
	}
	snapRev, snapIdx, snapJSON := "", []byte(nil), []byte(nil)
	if c.Snapshot != nil {
		var err1, err2 error
		snapRev = strconv.FormatInt(c.Snapshot.Rev, 10)
		snapIdx, err1 = json.Marshal(snapIndex{c.Snapshot.Rev, c.Snapshot.Time})
		snapJSON, err2 = json.Marshal(c.Snapshot)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	args = append(args, firstRev, snapRev, snapIdx, snapJSON, c.DropOpsBefore, c.KeepSnapshots)
	var buf []byte // one array for every record of the commit
	for i, r := range c.Ops {
		if r.Rev != firstRev+int64(i) {
			return fmt.Errorf("%s: revision %d after %d: %w", what, r.Rev, firstRev+int64(i)-1, ErrConflict)
		}
		start := len(buf)
		buf = appendRecord(buf, r)
		args = append(args, buf[start:len(buf):len(buf)])
	}
	k := keysOf(docID)
	return s.write(docID, what, scriptCommit, func(owner string) []string {
		return []string{k.meta, k.ops, k.snaps, k.snaptext, owner}
	}, args...)
}

// Ops implements Store.
func (s *RedisStore) Ops(docID string, after, upTo int64) ([]OpRecord, error) {
	what := fmt.Sprintf("ops of %s after %d", docID, after)
	k := keysOf(docID)
	ctx, cancel := s.ctx()
	defer cancel()
	vals, err := scriptOps.Run(ctx, s.rdb, []string{k.meta, k.ops}, after, upTo).StringSlice()
	if err != nil {
		return nil, redisErr(err, what)
	}
	var out []OpRecord
	if len(vals) > 0 {
		out = make([]OpRecord, len(vals))
	}
	for i, v := range vals {
		if err := json.Unmarshal([]byte(v), &out[i]); err != nil {
			return nil, fmt.Errorf("%s: decode: %w", what, err)
		}
	}
	return out, nil
}

// LogBounds implements Store.
func (s *RedisStore) LogBounds(docID string) (first, last int64, err error) {
	k := keysOf(docID)
	ctx, cancel := s.ctx()
	defer cancel()
	b, err := scriptBounds.Run(ctx, s.rdb, []string{k.meta, k.ops}).Int64Slice()
	if err != nil {
		return 0, 0, redisErr(err, "log bounds of "+docID)
	}
	return b[0], b[1], nil
}

// Snapshot implements Store.
func (s *RedisStore) Snapshot(docID string, atOrBefore int64) (Snapshot, bool, error) {
	k := keysOf(docID)
	ctx, cancel := s.ctx()
	defer cancel()
	v, err := scriptSnapshot.Run(ctx, s.rdb, []string{k.meta, k.snaps, k.snaptext}, atOrBefore).Text()
	if errors.Is(err, redis.Nil) {
		return Snapshot{}, false, nil
	}
	if err != nil {
		return Snapshot{}, false, redisErr(err, "snapshot of "+docID)
	}
	var sn Snapshot
	if err := json.Unmarshal([]byte(v), &sn); err != nil {
		return Snapshot{}, false, fmt.Errorf("snapshot of %s: %w", docID, err)
	}
	return sn, true, nil
}

// read runs scriptRead: the members ("z") or values ("v") of one of the
// document's keys, after checking that the document exists.
func (s *RedisStore) read(docID, key, mode, what string) ([]string, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	vals, err := scriptRead.Run(ctx, s.rdb, []string{keysOf(docID).meta, key}, mode).StringSlice()
	if err != nil {
		return nil, redisErr(err, what)
	}
	return vals, nil
}

// Snapshots implements Store.
func (s *RedisStore) Snapshots(docID string) ([]Snapshot, error) {
	vals, err := s.read(docID, keysOf(docID).snaps, "z", "snapshots of "+docID)
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, len(vals))
	for i, v := range vals {
		var ix snapIndex
		if err := json.Unmarshal([]byte(v), &ix); err != nil {
			return nil, fmt.Errorf("snapshots of %s: %w", docID, err)
		}
		out[i] = Snapshot{Rev: ix.Rev, Time: ix.Time}
	}
	return out, nil
}

// PutVersion implements Store.
func (s *RedisStore) PutVersion(docID string, v Version) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("put version of %s: %w", docID, err)
	}
	err = s.putField(docID, keysOf(docID).versions, v.Name, data, true, "put version of "+docID)
	if w, _ := replyWord(err); w == "EXISTS" {
		return fmt.Errorf("version %q of %s: %w", v.Name, docID, ErrVersionExists)
	}
	return err
}

func (s *RedisStore) putField(docID, key, field string, value []byte, onlyNew bool, what string) error {
	k := keysOf(docID)
	flag := "0"
	if onlyNew {
		flag = "1"
	}
	return s.write(docID, what, scriptPutField, func(owner string) []string {
		return []string{k.meta, key, owner}
	}, field, value, flag)
}

// Version implements Store.
func (s *RedisStore) Version(docID, name string) (Version, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	k := keysOf(docID)
	data, err := scriptRead.Run(ctx, s.rdb, []string{k.meta, k.versions}, "f", name).Text()
	if errors.Is(err, redis.Nil) {
		return Version{}, fmt.Errorf("version %q of %s: %w", name, docID, ErrUnknownVersion)
	}
	if err != nil {
		return Version{}, redisErr(err, "version of "+docID)
	}
	var v Version
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		return Version{}, fmt.Errorf("version %q of %s: %w", name, docID, err)
	}
	return v, nil
}

// Versions implements Store: by time, equal times by name (as BoltStore).
func (s *RedisStore) Versions(docID string) ([]Version, error) {
	vals, err := s.read(docID, keysOf(docID).versions, "v", "versions of "+docID)
	if err != nil {
		return nil, err
	}
	out := make([]Version, len(vals))
	for i, data := range vals {
		if err := json.Unmarshal([]byte(data), &out[i]); err != nil {
			return nil, fmt.Errorf("versions of %s: %w", docID, err)
		}
		out[i].Text = ""
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// Close implements Store; the client stays open (it is the caller's).
func (s *RedisStore) Close() error { return nil }
