package collab

import (
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
