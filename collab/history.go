package collab

import (
	"context"
	"fmt"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// Undo undoes the author's most recent edit that is not yet undone, as a
// new op: the inverse of that edit transformed over every op applied after
// it, so other people's later work is kept. The result is an ordinary op
// (broadcast, logged, itself redoable with Redo). Edits older than the
// retained log cannot be undone (ErrNothingToUndo).
//
// Limitation: the inverse is transformed over the author's own later ops
// too; when those were undone in between this is exact for the usual
// insert/delete pairs, but interleavings of deletes over the same text can
// leave what an ideal undo would remove.
func (s *Service) Undo(ctx context.Context, docID, author string) (Ack, error) {
	return wait(ctx, s.submitAsync(submission{
		req:   SubmitRequest{DocID: docID, Author: author},
		reply: make(chan Result, 1),
		build: func(d *document) (ot.Op, Cause, int64, error) {
			if err := d.loadUndo(); err != nil {
				return nil, "", 0, err
			}
			st := d.undo[author]
			if st == nil || len(st.undo) == 0 {
				return nil, "", 0, ErrNothingToUndo
			}
			target := st.undo[len(st.undo)-1]
			op, err := d.revert(target)
			if err != nil {
				st.undo = st.undo[:len(st.undo)-1] // history gone: drop the entry
				return nil, "", 0, fmt.Errorf("undo revision %d: %w", target, ErrNothingToUndo)
			}
			return op, CauseUndo, target, nil
		},
	}))
}

// Redo re-applies the author's most recently undone edit (the inverse of
// the undo, transformed over everything after it). Any new edit by the
// author clears the redo stack.
func (s *Service) Redo(ctx context.Context, docID, author string) (Ack, error) {
	return wait(ctx, s.submitAsync(submission{
		req:   SubmitRequest{DocID: docID, Author: author},
		reply: make(chan Result, 1),
		build: func(d *document) (ot.Op, Cause, int64, error) {
			if err := d.loadUndo(); err != nil {
				return nil, "", 0, err
			}
			st := d.undo[author]
			if st == nil || len(st.redo) == 0 {
				return nil, "", 0, ErrNothingToRedo
			}
			target := st.redo[len(st.redo)-1]
			op, err := d.revert(target)
			if err != nil {
				st.redo = st.redo[:len(st.redo)-1]
				return nil, "", 0, fmt.Errorf("redo revision %d: %w", target, ErrNothingToRedo)
			}
			return op, CauseRedo, target, nil
		},
	}))
}

// revert returns the op that undoes revision rev at the current head.
func (d *document) revert(rev int64) (ot.Op, error) {
	rec, err := d.record(rev)
	if err != nil {
		return nil, err
	}
	later, err := d.opsSince(rev)
	if err != nil {
		return nil, err
	}
	op := rec.Inverse
	for _, m := range later {
		op = ot.Transform(op, m.Op, ot.Right)
	}
	return op, nil
}

// textAt reconstructs the text at revision rev: the newest snapshot at or
// before it plus the retained ops up to it.
func (d *document) textAt(rev int64) (string, error) {
	if rev < 0 || rev > d.head {
		return "", fmt.Errorf("revision %d, document at %d: %w", rev, d.head, ErrFutureRevision)
	}
	if rev == d.head {
		return d.text.String(), nil
	}
	snap, ok, err := d.svc.store.Snapshot(d.id, rev)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("revision %d: no snapshot before it: %w", rev, ErrRevisionTooOld)
	}
	if snap.Rev == rev {
		return snap.Text, nil
	}
	ops, err := d.svc.store.Ops(d.id, snap.Rev, rev)
	if err != nil {
		return "", err
	}
	if int64(len(ops)) != rev-snap.Rev {
		return "", fmt.Errorf("revision %d: ops since snapshot %d were compacted: %w", rev, snap.Rev, ErrRevisionTooOld)
	}
	t := ot.NewDoc(snap.Text)
	for _, r := range ops {
		if _, err := t.Apply(r.Op); err != nil {
			return "", fmt.Errorf("replay revision %d: %w", r.Rev, err)
		}
	}
	return t.String(), nil
}

// TextAt returns the text as it was at revision rev (reconstructed from a
// snapshot and the log; ErrRevisionTooOld if they no longer reach it).
func (s *Service) TextAt(ctx context.Context, docID string, rev int64) (string, error) {
	var text string
	err := s.run(ctx, docID, func(d *document) error {
		var err error
		text, err = d.textAt(rev)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("text of %s at %d: %w", docID, rev, err)
	}
	return text, nil
}

// NameVersion names revision rev (rev < 0: the current revision). The text
// is stored with the name, so a named version survives log compaction.
func (s *Service) NameVersion(ctx context.Context, docID, name, author string, rev int64) (Version, error) {
	if name == "" {
		return Version{}, fmt.Errorf("name version of %s: %w: empty name", docID, ErrBadRequest)
	}
	var v Version
	err := s.run(ctx, docID, func(d *document) error {
		if rev < 0 {
			rev = d.head
		}
		text, err := d.textAt(rev)
		if err != nil {
			return err
		}
		v = Version{Name: name, Rev: rev, Text: text, Author: author, Time: s.cfg.Now()}
		return s.store.PutVersion(docID, v)
	})
	if err != nil {
		return Version{}, fmt.Errorf("name version %q of %s: %w", name, docID, err)
	}
	return v, nil
}

// Versions lists the named versions (without their texts), oldest first.
func (s *Service) Versions(ctx context.Context, docID string) ([]Version, error) {
	var vs []Version
	err := s.run(ctx, docID, func(d *document) error {
		var err error
		vs, err = s.store.Versions(docID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("versions of %s: %w", docID, err)
	}
	return vs, nil
}

// Snapshots lists the automatic snapshots (revision and time), oldest
// first: the points TextAt and RestoreRevision can always reach.
func (s *Service) Snapshots(ctx context.Context, docID string) ([]Snapshot, error) {
	var ss []Snapshot
	err := s.run(ctx, docID, func(d *document) error {
		var err error
		ss, err = s.store.Snapshots(docID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("snapshots of %s: %w", docID, err)
	}
	return ss, nil
}

// RestoreVersion makes the document's text equal to a named version again,
// as a NEW op by author (the diff from the current text), so concurrent
// edits transform against it and the author can Undo it.
func (s *Service) RestoreVersion(ctx context.Context, docID, author, name string) (Ack, error) {
	return s.restore(ctx, docID, author, func(d *document) (string, error) {
		v, err := s.store.Version(docID, name)
		return v.Text, err
	})
}

// RestoreRevision is RestoreVersion for an unnamed revision.
func (s *Service) RestoreRevision(ctx context.Context, docID, author string, rev int64) (Ack, error) {
	return s.restore(ctx, docID, author, func(d *document) (string, error) { return d.textAt(rev) })
}

func (s *Service) restore(ctx context.Context, docID, author string, old func(d *document) (string, error)) (Ack, error) {
	return wait(ctx, s.submitAsync(submission{
		req:   SubmitRequest{DocID: docID, Author: author},
		reply: make(chan Result, 1),
		build: func(d *document) (ot.Op, Cause, int64, error) {
			text, err := old(d)
			if err != nil {
				return nil, "", 0, fmt.Errorf("restore: %w", err)
			}
			return ot.MinimalDiff(d.text.String(), text), CauseRestore, 0, nil
		},
	}))
}
