package collab

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltStore is the embedded Store: one bbolt file under the caller's data
// directory. Layout:
//
//	meta/<docID>               -> DocMeta (JSON)
//	docs/<docID>/ops/<rev>     -> OpRecord (JSON), rev as 8 big-endian bytes
//	docs/<docID>/snaps/<rev>   -> Snapshot (JSON)
//	docs/<docID>/versions/<name> -> Version (JSON)
//
// Commit goes through bbolt's Batch when another commit is in flight:
// commits from the writers of several documents that arrive together share
// one transaction and one fsync, and each caller returns only after that
// fsync, so "durable before ack" holds. A commit with none other in flight
// runs at once (db.Update) instead of waiting out the batch window for
// company that is not coming: a lone busy document's writer commits every
// batch without the 2 ms wait.
type BoltStore struct {
	db       *bolt.DB
	inflight atomic.Int32 // commits in progress
}

var (
	bucketMeta     = []byte("meta")
	bucketDocs     = []byte("docs")
	bucketOps      = []byte("ops")
	bucketSnaps    = []byte("snaps")
	bucketVersions = []byte("versions")
)

// BoltFileName is the store's file inside the data directory.
const BoltFileName = "collab.db"

// OpenBoltStore opens (creating if needed) dir/collab.db. batchDelay is how
// long a commit may wait for commits of other documents to share its fsync
// (0 picks 2ms; bbolt's own default of 10ms is too long for typing latency).
func OpenBoltStore(dir string, batchDelay time.Duration) (*BoltStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open collab store: %w", err)
	}
	path := filepath.Join(dir, BoltFileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: 2 * time.Second, // a second process holding the file lock fails instead of hanging
		// The freelist is rebuilt on open rather than written on every
		// commit: less to fsync per op.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("open collab store %s: %w", path, err)
	}
	if batchDelay <= 0 {
		batchDelay = 2 * time.Millisecond
	}
	db.MaxBatchDelay = batchDelay
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketDocs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open collab store %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// Path is the database file.
func (s *BoltStore) Path() string { return s.db.Path() }

func revKey(rev int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(rev))
	return k[:]
}

func keyRev(k []byte) int64 { return int64(binary.BigEndian.Uint64(k)) }

// docBucket returns docs/<id>/<sub>, or ErrUnknownDoc.
func docBucket(tx *bolt.Tx, id string, sub []byte) (*bolt.Bucket, error) {
	d := tx.Bucket(bucketDocs).Bucket([]byte(id))
	if d == nil {
		return nil, fmt.Errorf("document %q: %w", id, ErrUnknownDoc)
	}
	return d.Bucket(sub), nil
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// CreateDoc implements Store.
func (s *BoltStore) CreateDoc(meta DocMeta, initial Snapshot) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		id := []byte(meta.ID)
		if tx.Bucket(bucketMeta).Get(id) != nil {
			return fmt.Errorf("document %q: %w", meta.ID, ErrDocExists)
		}
		if err := putJSON(tx.Bucket(bucketMeta), id, meta); err != nil {
			return err
		}
		d, err := tx.Bucket(bucketDocs).CreateBucket(id)
		if err != nil {
			return err
		}
		for _, sub := range [][]byte{bucketOps, bucketSnaps, bucketVersions} {
			if _, err := d.CreateBucket(sub); err != nil {
				return err
			}
		}
		return putJSON(d.Bucket(bucketSnaps), revKey(initial.Rev), initial)
	})
}

// UpdateDoc implements Store.
func (s *BoltStore) UpdateDoc(meta DocMeta) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta).Get([]byte(meta.ID)) == nil {
			return fmt.Errorf("document %q: %w", meta.ID, ErrUnknownDoc)
		}
		return putJSON(tx.Bucket(bucketMeta), []byte(meta.ID), meta)
	})
}

// Doc implements Store.
func (s *BoltStore) Doc(id string) (DocMeta, error) {
	var m DocMeta
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("document %q: %w", id, ErrUnknownDoc)
		}
		return json.Unmarshal(v, &m)
	})
	return m, err
}

// Docs implements Store. It scans all metadata: rooms hold few documents
// and the metadata is small.
func (s *BoltStore) Docs(room string) ([]DocMeta, error) {
	var out []DocMeta
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).ForEach(func(_, v []byte) error {
			var m DocMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			if m.Room == room {
				out = append(out, m)
			}
			return nil
		})
	})
	sortDocs(out)
	return out, err
}

// DeleteDoc implements Store.
func (s *BoltStore) DeleteDoc(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta).Get([]byte(id)) == nil {
			return fmt.Errorf("document %q: %w", id, ErrUnknownDoc)
		}
		if err := tx.Bucket(bucketMeta).Delete([]byte(id)); err != nil {
			return err
		}
		err := tx.Bucket(bucketDocs).DeleteBucket([]byte(id))
		if errors.Is(err, bolt.ErrBucketNotFound) {
			err = nil
		}
		return err
	})
}

// Commit implements Store. It is safe to re-run (bbolt's Batch may retry a
// function alone when another in its batch failed): puts and deletes are
// idempotent.
func (s *BoltStore) Commit(docID string, c Commit) error {
	// Encode outside the transaction: the batch holds the writer lock.
	type kv struct{ k, v []byte }
	ops := make([]kv, len(c.Ops))
	var buf []byte // one array for every record of the commit
	var enc recordEncoder
	for i, r := range c.Ops {
		start := len(buf)
		buf = enc.append(buf, r)
		ops[i] = kv{revKey(r.Rev), buf[start:len(buf):len(buf)]}
	}
	var snap *kv
	if c.Snapshot != nil {
		snap = &kv{revKey(c.Snapshot.Rev), appendSnapshot(make([]byte, 0, len(c.Snapshot.Text)+64), *c.Snapshot)}
	}
	commit := func(tx *bolt.Tx) error {
		ob, err := docBucket(tx, docID, bucketOps)
		if err != nil {
			return err
		}
		ob.FillPercent = 1 // keys only ever grow: pack pages full
		for _, o := range ops {
			if err := ob.Put(o.k, o.v); err != nil {
				return err
			}
		}
		sb, _ := docBucket(tx, docID, bucketSnaps)
		if snap != nil {
			if err := sb.Put(snap.k, snap.v); err != nil {
				return err
			}
		}
		if c.DropOpsBefore > 0 {
			if err := deleteBefore(ob, c.DropOpsBefore); err != nil {
				return err
			}
		}
		if k := c.KeepSnapshots; k > 0 {
			// Count with a cursor: Bucket.Stats does not see this
			// transaction's own, not yet spilled, writes.
			n := 0
			cur := sb.Cursor()
			for key, _ := cur.First(); key != nil; key, _ = cur.Next() {
				n++
			}
			for key, _ := cur.First(); key != nil && n > k; key, _ = cur.First() {
				if err := sb.Delete(key); err != nil {
					return err
				}
				n--
			}
		}
		return nil
	}
	defer s.inflight.Add(-1)
	if s.inflight.Add(1) == 1 {
		return s.db.Update(commit)
	}
	return s.db.Batch(commit)
}

func deleteBefore(b *bolt.Bucket, rev int64) error {
	// Backwards from the newest op to drop, deleting at the cursor: after
	// a Delete the cursor's slot holds the next key (which is why Next
	// after Delete skips one in bbolt), but Prev still lands on the key
	// before, so each step costs no search. Going forwards, calling First
	// again after each delete walked every leaf the transaction had
	// emptied, and a b.Delete per key costs a search from the root: a
	// tenth of the durable replay's CPU each (docs/COLLAB.md, Throughput).
	cur := b.Cursor()
	k, _ := cur.Seek(revKey(rev))
	if k == nil {
		k, _ = cur.Last()
	} else {
		k, _ = cur.Prev()
	}
	for ; k != nil; k, _ = cur.Prev() {
		if err := cur.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Ops implements Store.
func (s *BoltStore) Ops(docID string, after, upTo int64) ([]OpRecord, error) {
	var out []OpRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		ob, err := docBucket(tx, docID, bucketOps)
		if err != nil {
			return err
		}
		cur := ob.Cursor()
		for k, v := cur.Seek(revKey(after + 1)); k != nil && keyRev(k) <= upTo; k, v = cur.Next() {
			var r OpRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode rev %d: %w", keyRev(k), err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// LogBounds implements Store.
func (s *BoltStore) LogBounds(docID string) (first, last int64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		ob, err := docBucket(tx, docID, bucketOps)
		if err != nil {
			return err
		}
		cur := ob.Cursor()
		if k, _ := cur.First(); k != nil {
			first = keyRev(k)
		}
		if k, _ := cur.Last(); k != nil {
			last = keyRev(k)
		}
		return nil
	})
	return first, last, err
}

// Snapshot implements Store.
func (s *BoltStore) Snapshot(docID string, atOrBefore int64) (snap Snapshot, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		sb, err := docBucket(tx, docID, bucketSnaps)
		if err != nil {
			return err
		}
		cur := sb.Cursor()
		k, v := cur.Seek(revKey(atOrBefore))
		switch {
		case k == nil:
			k, v = cur.Last()
		case keyRev(k) > atOrBefore:
			k, v = cur.Prev()
		}
		if k == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &snap)
	})
	return snap, ok, err
}

// Snapshots implements Store.
func (s *BoltStore) Snapshots(docID string) ([]Snapshot, error) {
	var out []Snapshot
	err := s.db.View(func(tx *bolt.Tx) error {
		sb, err := docBucket(tx, docID, bucketSnaps)
		if err != nil {
			return err
		}
		return sb.ForEach(func(_, v []byte) error {
			var sn Snapshot
			if err := json.Unmarshal(v, &sn); err != nil {
				return err
			}
			out = append(out, Snapshot{Rev: sn.Rev, Time: sn.Time})
			return nil
		})
	})
	return out, err
}

// PutVersion implements Store.
func (s *BoltStore) PutVersion(docID string, v Version) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		vb, err := docBucket(tx, docID, bucketVersions)
		if err != nil {
			return err
		}
		if vb.Get([]byte(v.Name)) != nil {
			return fmt.Errorf("version %q of %s: %w", v.Name, docID, ErrVersionExists)
		}
		return putJSON(vb, []byte(v.Name), v)
	})
}

// Version implements Store.
func (s *BoltStore) Version(docID, name string) (Version, error) {
	var v Version
	err := s.db.View(func(tx *bolt.Tx) error {
		vb, err := docBucket(tx, docID, bucketVersions)
		if err != nil {
			return err
		}
		data := vb.Get([]byte(name))
		if data == nil {
			return fmt.Errorf("version %q of %s: %w", name, docID, ErrUnknownVersion)
		}
		return json.Unmarshal(data, &v)
	})
	return v, err
}

// Versions implements Store.
func (s *BoltStore) Versions(docID string) ([]Version, error) {
	var out []Version
	err := s.db.View(func(tx *bolt.Tx) error {
		vb, err := docBucket(tx, docID, bucketVersions)
		if err != nil {
			return err
		}
		return vb.ForEach(func(_, data []byte) error {
			var v Version
			if err := json.Unmarshal(data, &v); err != nil {
				return err
			}
			v.Text = ""
			out = append(out, v)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, err
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }
