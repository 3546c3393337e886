package collab

import (
	"context"
	"errors"
	"fmt"
)

// A cluster store (RedisStore) can refuse a write because this node lost
// the room (ErrFenced), because someone else moved the stored revision
// (ErrConflict), or fail to answer (ErrUnavailable: the write may or may
// not have landed). In each case the writer's in-memory document may no
// longer match the store, so it is not reloaded in place: it fails every
// request still queued, cuts its subscribers (they reopen and get the
// store's state), and unloads. The next request loads it fresh.

// staleCopy reports whether err means the in-memory document can no
// longer be trusted to match the store.
func staleCopy(err error) bool {
	return errors.Is(err, ErrFenced) || errors.Is(err, ErrConflict) || errors.Is(err, ErrUnavailable)
}

// dropStale fails the document with err and takes it out of the service
// at once, so that requests arriving from now on load a fresh copy even
// while submitters keep this one's queue busy; this writer answers what
// is already queued to it with err and exits (finish).
func (d *document) dropStale(err error) {
	d.svc.cfg.Logger.Warn("collab: document unloaded, the store refused or did not answer a write", "doc", d.id, "err", err)
	d.staged = nil
	d.fail(fmt.Errorf("document %q: %w", d.id, err), err)
	d.svc.mu.Lock()
	if d.svc.docs[d.id] == d {
		delete(d.svc.docs, d.id)
	}
	d.svc.mu.Unlock()
}

// ReleaseRoom unloads every open document of room as a fenced write would
// (queued requests fail with ErrFenced, subscribers are cut), for a node
// that learns it lost the room before its next write does: its readers
// must not keep following a copy another node now writes.
func (s *Service) ReleaseRoom(ctx context.Context, room string) error {
	s.mu.Lock()
	ids := make([]string, 0, len(s.docs))
	for id := range s.docs {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		err := s.run(ctx, id, func(d *document) error {
			if d.meta.Room == room {
				d.dropStale(fmt.Errorf("room %q released: %w", room, ErrFenced))
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrUnknownDoc) && !staleCopy(err) {
			return fmt.Errorf("release room %s: %w", room, err)
		}
	}
	return nil
}
