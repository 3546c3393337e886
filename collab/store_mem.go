package collab

import (
	"fmt"
	"sort"
	"sync"
)

// MemStore is a Store that keeps everything in memory: for tests, and for
// running without a data directory. Its Commit is trivially "durable".
type MemStore struct {
	mu   sync.Mutex
	docs map[string]*memDoc
}

type memDoc struct {
	meta     DocMeta
	log      opLog      // ascending Rev
	snaps    []Snapshot // ascending Rev
	versions []Version
	threads  map[string]CommentThread // by id (store_comments.go)
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{docs: map[string]*memDoc{}} }

func (s *MemStore) doc(id string) (*memDoc, error) {
	d, ok := s.docs[id]
	if !ok {
		return nil, fmt.Errorf("document %q: %w", id, ErrUnknownDoc)
	}
	return d, nil
}

// CreateDoc implements Store.
func (s *MemStore) CreateDoc(meta DocMeta, initial Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.docs[meta.ID]; ok {
		return fmt.Errorf("document %q: %w", meta.ID, ErrDocExists)
	}
	s.docs[meta.ID] = &memDoc{meta: meta, snaps: []Snapshot{initial}}
	return nil
}

// UpdateDoc implements Store.
func (s *MemStore) UpdateDoc(meta DocMeta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.doc(meta.ID)
	if err != nil {
		return err
	}
	d.meta = meta
	return nil
}

// Doc implements Store.
func (s *MemStore) Doc(id string) (DocMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.doc(id)
	if err != nil {
		return DocMeta{}, err
	}
	return d.meta, nil
}

// Docs implements Store.
func (s *MemStore) Docs(room string) ([]DocMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DocMeta
	for _, d := range s.docs {
		if d.meta.Room == room {
			out = append(out, d.meta)
		}
	}
	sortDocs(out)
	return out, nil
}

func sortDocs(ds []DocMeta) {
	sort.Slice(ds, func(i, j int) bool {
		if !ds[i].Created.Equal(ds[j].Created) {
			return ds[i].Created.Before(ds[j].Created)
		}
		return ds[i].ID < ds[j].ID
	})
}

// DeleteDoc implements Store.
func (s *MemStore) DeleteDoc(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.doc(id); err != nil {
		return err
	}
	delete(s.docs, id)
	return nil
}

// Commit implements Store.
func (s *MemStore) Commit(docID string, c Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.doc(docID)
	if err != nil {
		return err
	}
	last := int64(-1)
	if ops := d.log.ops(); len(ops) > 0 {
		last = ops[len(ops)-1].Rev
	}
	for _, r := range c.Ops {
		if r.Rev <= last {
			return fmt.Errorf("commit %s: revision %d after %d", docID, r.Rev, last)
		}
		last = r.Rev
	}
	d.log.append(c.Ops) // ops are never modified once built: no deep copy
	if c.Snapshot != nil {
		d.snaps = append(d.snaps, *c.Snapshot)
	}
	if c.DropOpsBefore > 0 {
		ops := d.log.ops()
		d.log.drop(sort.Search(len(ops), func(i int) bool { return ops[i].Rev >= c.DropOpsBefore }))
	}
	if k := c.KeepSnapshots; k > 0 && len(d.snaps) > k {
		d.snaps = append([]Snapshot(nil), d.snaps[len(d.snaps)-k:]...)
	}
	return nil
}

// Ops implements Store.
func (s *MemStore) Ops(docID string, after, upTo int64) ([]OpRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.doc(docID)
	if err != nil {
		return nil, err
	}
	var out []OpRecord
	ops := d.log.ops()
	i := sort.Search(len(ops), func(i int) bool { return ops[i].Rev > after }) // revisions ascend
	for _, r := range ops[i:] {
		if r.Rev > upTo {
			break
		}
		out = append(out, r)
	}
	return out, nil
}

// LogBounds implements Store.
func (s *MemStore) LogBounds(docID string) (int64, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.doc(docID)
	if err != nil || len(d.log.ops()) == 0 {
		return 0, 0, err
	}
	ops := d.log.ops()
	return ops[0].Rev, ops[len(ops)-1].Rev, nil
}

// Snapshot implements Store.
func (s *MemStore) Snapshot(docID string, atOrBefore int64) (Snapshot, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.doc(docID)
	if err != nil {
		return Snapshot{}, false, err
	}
	for i := len(d.snaps) - 1; i >= 0; i-- {
		if d.snaps[i].Rev <= atOrBefore {
			return d.snaps[i], true, nil
		}
	}
	return Snapshot{}, false, nil
}

// Snapshots implements Store.
func (s *MemStore) Snapshots(docID string) ([]Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.doc(docID)
	if err != nil {
		return nil, err
	}
	out := make([]Snapshot, len(d.snaps))
	for i, sn := range d.snaps {
		out[i] = Snapshot{Rev: sn.Rev, Time: sn.Time}
	}
	return out, nil
}

// PutVersion implements Store.
func (s *MemStore) PutVersion(docID string, v Version) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.doc(docID)
	if err != nil {
		return err
	}
	for _, old := range d.versions {
		if old.Name == v.Name {
			return fmt.Errorf("version %q of %s: %w", v.Name, docID, ErrVersionExists)
		}
	}
	d.versions = append(d.versions, v)
	return nil
}

// Version implements Store.
func (s *MemStore) Version(docID, name string) (Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.doc(docID)
	if err != nil {
		return Version{}, err
	}
	for _, v := range d.versions {
		if v.Name == name {
			return v, nil
		}
	}
	return Version{}, fmt.Errorf("version %q of %s: %w", name, docID, ErrUnknownVersion)
}

// Versions implements Store.
func (s *MemStore) Versions(docID string) ([]Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.doc(docID)
	if err != nil {
		return nil, err
	}
	out := make([]Version, len(d.versions))
	for i, v := range d.versions {
		v.Text = ""
		out[i] = v
	}
	return out, nil
}

// Close implements Store.
func (s *MemStore) Close() error { return nil }

// opLog is a document's retained ops, buf[start:]. Compaction drops from
// the front (every SnapshotEvery ops); moving the whole window down each
// time cost about ten record copies per op, and letting append reallocate
// a cut slice allocated the window's size over and over. Here the dropped
// front is reused: the live records move down only when the array is full
// and at least half of it is dropped (so at most one copy per op), and a
// new array, twice what is live, is made only when it is not.
type opLog struct {
	buf   []OpRecord
	start int
}

func (l *opLog) ops() []OpRecord { return l.buf[l.start:] }

func (l *opLog) append(rs []OpRecord) {
	if len(l.buf)+len(rs) > cap(l.buf) {
		live := l.buf[l.start:]
		if l.start >= len(live)+len(rs) {
			n := copy(l.buf, live)
			clear(l.buf[n:])
			l.buf = l.buf[:n]
		} else {
			nb := make([]OpRecord, len(live), 2*(len(live)+len(rs)))
			copy(nb, live)
			l.buf = nb
		}
		l.start = 0
	}
	l.buf = append(l.buf, rs...)
}

// drop forgets the first n live records (cleared, so that what they hold
// can be collected).
func (l *opLog) drop(n int) {
	clear(l.buf[l.start : l.start+n])
	l.start += n
}
