package collab

import "errors"

// De-duplication by (author, client op id), without an index.
//
// An op that was applied has a revision after its base: a client cannot
// have seen the revision its own op made without seeing the op (it arrives
// tagged with its ClientOpID, as the ack). So a resubmission of an applied
// op, which carries the op's original base, always finds the op among the
// ops it missed, and the writer reads those anyway to transform it. A
// scan of them replaces the map of every retained (author, id) pair that
// the writer used to keep: on the common path (base = head) there is
// nothing to scan, and the writer no longer pays a map insert per op and
// a sweep of the map at each compaction (about a fifth of its time on the
// automerge-paper replay, docs/COLLAB.md "Throughput").

// dedupKey is what identifies a client's op: unique per author.
type dedupKey struct{ author, clientOpID string }

// duplicateIn returns the original ack of req if one of the ops it missed
// is req applied before.
func duplicateIn(missed []OpRecord, req SubmitRequest) (Result, bool) {
	if req.ClientOpID == "" {
		return Result{}, false
	}
	key := dedupKey{req.Author, req.ClientOpID}
	for i := range missed {
		m := &missed[i]
		if (dedupKey{m.Author, m.ClientOpID}) == key {
			return Result{Ack: Ack{Rev: m.Rev, Op: m.Op, Duplicate: true}}, true
		}
	}
	return Result{}, false
}

// duplicateTooOld handles a resubmission whose base is older than the
// retained log (err is opsSince's ErrRevisionTooOld) but whose op may
// still be in it: the retained log is searched, so such a client gets its
// original ack rather than having to reload. It is the rare path: the
// log is read from the store when the in-memory tail does not reach back.
func (d *document) duplicateTooOld(req SubmitRequest, err error) (Result, bool) {
	if req.ClientOpID == "" || !errors.Is(err, ErrRevisionTooOld) {
		return Result{}, false
	}
	retained, rerr := d.opsSince(d.first - 1)
	if rerr != nil {
		return Result{}, false // the caller reports the original error
	}
	return duplicateIn(retained, req)
}
