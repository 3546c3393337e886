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
	ops      []OpRecord // ascending Rev
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
	for _, r := range c.Ops {
		if n := len(d.ops); n > 0 && r.Rev <= d.ops[n-1].Rev {
			return fmt.Errorf("commit %s: revision %d after %d", docID, r.Rev, d.ops[n-1].Rev)
		}
		d.ops = append(d.ops, r) // ops are never modified once built: no copy
	}
	if c.Snapshot != nil {
		d.snaps = append(d.snaps, *c.Snapshot)
	}
	if c.DropOpsBefore > 0 {
		// Cut the front off rather than move the rest down: a compaction
		// every SnapshotEvery ops moving the whole window cost about ten
		// record copies per op. The next append that outgrows the array
		// copies only what is left; until then the dropped records stay
		// in it, at most as many as are kept.
		i := sort.Search(len(d.ops), func(i int) bool { return d.ops[i].Rev >= c.DropOpsBefore })
		d.ops = d.ops[i:]
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
	i := sort.Search(len(d.ops), func(i int) bool { return d.ops[i].Rev > after }) // revisions ascend
	for _, r := range d.ops[i:] {
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
	if err != nil || len(d.ops) == 0 {
		return 0, 0, err
	}
	return d.ops[0].Rev, d.ops[len(d.ops)-1].Rev, nil
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
