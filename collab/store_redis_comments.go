package collab

import (
	"encoding/json"
	"fmt"
)

// Comment threads in Redis: huddle:doc:<id>:comments, one hash field per
// thread, deleted with the document. Writes are fenced like the rest.

// PutThread implements CommentStore; acknowledged after Redis has it.
func (s *RedisStore) PutThread(docID string, t CommentThread) error {
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("put thread of %s: %w", docID, err)
	}
	return s.putField(docID, keysOf(docID).comments, t.ID, data, false, "put thread of "+docID)
}

// Threads implements CommentStore.
func (s *RedisStore) Threads(docID string) ([]CommentThread, error) {
	vals, err := s.read(docID, keysOf(docID).comments, "v", "threads of "+docID)
	if err != nil {
		return nil, err
	}
	out := make([]CommentThread, 0, len(vals))
	for _, v := range vals {
		var t CommentThread
		if err := json.Unmarshal([]byte(v), &t); err != nil {
			return nil, fmt.Errorf("threads of %s: %w", docID, err)
		}
		out = append(out, t)
	}
	sortThreads(out)
	return out, nil
}
