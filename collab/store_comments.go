package collab

import (
	"encoding/json"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// Comment threads in the stores: in bbolt under docs/<id>/comments, one
// key per thread, so they go with the document when it is deleted.

var bucketComments = []byte("comments")

// PutThread implements CommentStore; durable when it returns.
func (s *BoltStore) PutThread(docID string, t CommentThread) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		d := tx.Bucket(bucketDocs).Bucket([]byte(docID))
		if d == nil {
			return fmt.Errorf("put thread of %s: %w", docID, ErrUnknownDoc)
		}
		b, err := d.CreateBucketIfNotExists(bucketComments)
		if err != nil {
			return fmt.Errorf("put thread of %s: %w", docID, err)
		}
		return putJSON(b, []byte(t.ID), t)
	})
}

// Threads implements CommentStore.
func (s *BoltStore) Threads(docID string) ([]CommentThread, error) {
	var out []CommentThread
	err := s.db.View(func(tx *bolt.Tx) error {
		d := tx.Bucket(bucketDocs).Bucket([]byte(docID))
		if d == nil {
			return fmt.Errorf("threads of %s: %w", docID, ErrUnknownDoc)
		}
		b := d.Bucket(bucketComments)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var t CommentThread
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("threads of %s: %w", docID, err)
			}
			out = append(out, t)
			return nil
		})
	})
	sortThreads(out)
	return out, err
}

// PutThread implements CommentStore.
func (s *MemStore) PutThread(docID string, t CommentThread) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.doc(docID)
	if err != nil {
		return err
	}
	if d.threads == nil {
		d.threads = map[string]CommentThread{}
	}
	t.Comments = append([]Comment(nil), t.Comments...)
	d.threads[t.ID] = t
	return nil
}

// Threads implements CommentStore.
func (s *MemStore) Threads(docID string) ([]CommentThread, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.doc(docID)
	if err != nil {
		return nil, err
	}
	out := make([]CommentThread, 0, len(d.threads))
	for _, t := range d.threads {
		t.Comments = append([]Comment(nil), t.Comments...)
		out = append(out, t)
	}
	sortThreads(out)
	return out, nil
}

func sortThreads(ts []CommentThread) {
	sort.Slice(ts, func(i, j int) bool {
		if !ts[i].Created.Equal(ts[j].Created) {
			return ts[i].Created.Before(ts[j].Created)
		}
		return ts[i].ID < ts[j].ID
	})
}
