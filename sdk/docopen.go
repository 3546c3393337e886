package sdk

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/huddle-rtc/huddle/collab/client"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Opening a Document and following the server's stream again after it
// broke: a reconnect, lagging, a gap, or the server's copy gone (outage.go).

func (d *Document) openError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.openErr
}

// disconnected: the link went down; the stream will resume with a re-open.
func (d *Document) disconnected() {
	d.mu.Lock()
	d.syncing = true
	d.openReq = ""
	if d.afterInflight != nil { // the resubmission's answer is lost: ask again after the re-open
		d.afterInflight = nil
		d.docs.mu.Lock()
		delete(d.docs.rawWait, d.lastSent.ClientOpID)
		d.docs.mu.Unlock()
	}
	d.signalLocked()
	d.mu.Unlock()
}

// reopen sends open for this document on the current link: the first
// time for a snapshot, afterwards from the last revision seen (catch-up).
// force sends it even if one is already out (the server said lagging).
func (d *Document) reopen(force bool) {
	l, gen := d.docs.currentLinkGen()
	if l == nil {
		return
	}
	d.mu.Lock()
	if d.closed || d.out.failed != nil || (d.syncing && !force && d.syncGen == gen && d.openReq != "") {
		d.mu.Unlock()
		return
	}
	reqID := d.docs.nextReqID()
	req := &protocol.DocRequest{Type: protocol.DocTypeOpen, ReqID: reqID, Doc: d.id}
	if d.opened && !d.fresh {
		rev := d.c.Revision()
		req.Rev = &rev
	}
	if !d.docs.register(gen, reqID, func(m any, err error) { d.handleOpenReply(reqID, m, err) }) {
		d.mu.Unlock()
		return
	}
	if d.opened {
		d.stats.Reopened++
	}
	d.openReq, d.syncing, d.syncGen = reqID, true, gen
	d.signalLocked()
	d.mu.Unlock()
	d.docs.sendAsync(l, req)
}

func (d *Document) handleOpenReply(reqID string, m any, err error) {
	d.mu.Lock()
	if reqID != d.openReq || d.closed {
		d.mu.Unlock()
		return
	}
	if err != nil {
		d.openReq = ""
		if errors.Is(err, ErrDisconnected) && (d.opened || !errors.Is(err, ErrCutOff)) {
			d.mu.Unlock() // the next link re-opens it
			return
		}
		if errors.Is(err, ErrCutOff) {
			// Open is waiting for a link that will not come back.
			err = fmt.Errorf("open %s: %w", d.id, err)
		}
		if !d.opened {
			d.openErr = err
			d.closed = true
			close(d.ready)
			d.signalLocked()
			d.mu.Unlock()
			d.unregister()
			return
		}
		var de *DocError
		if errors.As(err, &de) && storeTrouble(de) {
			d.mu.Unlock() // the server cannot load it now: again, after a wait
			d.pauseSaving(de)
			return
		}
		if IsDocError(err, protocol.DocErrTooOld) && !d.fresh {
			d.fresh = true
			d.mu.Unlock()
			d.reopen(true)
			return
		}
		d.mu.Unlock()
		d.emit(nil, []error{fmt.Errorf("re-open %s: %w", d.id, err)})
		return
	}
	o, ok := m.(*protocol.DocOpened)
	if !ok {
		d.mu.Unlock()
		return
	}
	changes, errs := d.handleOpenedLocked(o)
	d.openedAfterOutageLocked()
	d.signalLocked()
	acks := d.takeAcksLocked()
	d.mu.Unlock()
	d.emit(changes, errs)
	d.emitAcks(acks)
	d.flushCursor()
}

func (d *Document) handleOpenedLocked(m *protocol.DocOpened) (changes []Change, errs []error) {
	d.syncing, d.openReq = false, ""
	d.unplaceThreadsLocked() // placed again from the threads sent after opened
	d.readOnly = m.ReadOnly
	if !d.opened {
		text := ""
		if m.Text != nil {
			text = *m.Text
		} else if m.Rev != 0 || len(m.Ops) > 0 {
			d.openErr = fmt.Errorf("open %s: the server sent ops instead of the text", d.id)
			d.closed = true
			close(d.ready)
			return nil, nil
		}
		d.c = client.New(d.docs.idPrefix(), m.Rev, text)
		d.shadow = ot.NewDoc(text)
		d.opened = true
		close(d.ready)
		return nil, nil
	}
	if m.Text != nil {
		d.fresh = false
		if d.afterInflight == nil && m.Rev == d.c.Revision() && d.shadow.String() == *m.Text {
			d.sendSubmitLocked()
			return nil, nil
		}
		return d.snapshotLocked(m), nil
	}
	for _, rec := range m.Ops {
		ch, ok := d.receiveLocked(rec.Rev, rec.ID, rec.Author, rec.Op)
		changes = append(changes, ch...)
		if !ok {
			return changes, nil
		}
	}
	d.sendSubmitLocked() // what is still in flight, with its original id
	return changes, nil
}

// snapshotLocked takes a snapshot that answered a re-open. The server's
// ops since this client's revision are not known, so whether the in-flight
// op was applied is unknown too: it is resubmitted (with the id, base and
// op it was last sent with, so the server applies it at most once) and the
// document reloaded again once the server answered. Edits not yet sent
// are rebased from the text as this client knew it (with the in-flight op)
// onto the snapshot: a coarse diff, but the server's text is never
// doubted.
func (d *Document) snapshotLocked(m *protocol.DocOpened) []Change {
	inf, pending := d.c.Inflight()
	if pending && d.afterInflight == nil && d.lastSent.ClientOpID == inf.ClientOpID {
		after, err := ot.Apply(d.shadow.String(), inf.Op)
		if err == nil {
			d.afterInflight = &after
			d.syncing = true
			sent := d.lastSent
			op, _ := json.Marshal(sent.Op)
			id := sent.ClientOpID
			d.docs.waitRaw(id, func(ans any) { d.inflightSettled(id, ans) })
			if l, _ := d.docs.currentLink(); l != nil {
				d.docs.sendAsync(l, &protocol.DocSubmit{Type: protocol.DocTypeSubmit, Doc: d.id, Rev: sent.BaseRev, ID: id, Op: op})
			}
			return nil
		}
	}
	base := d.shadow.String() // what the local edits are made against
	if d.afterInflight != nil {
		base, d.afterInflight = *d.afterInflight, nil
	}
	local := d.c.Text()
	rebased := ot.Transform(ot.Diff(base, local), ot.Diff(base, *m.Text), ot.Right)
	d.c = client.New(d.docs.idPrefix(), m.Rev, *m.Text)
	d.shadow = ot.NewDoc(*m.Text)
	d.hist = nil
	if !rebased.IsNoop() {
		if _, err := d.c.ApplyLocal(rebased); err != nil {
			d.c = client.New(d.docs.idPrefix(), m.Rev, *m.Text)
		}
	}
	view := ot.Diff(local, d.c.Text())
	d.moveCursorsLocked(view, "")
	d.sendSubmitLocked()
	if view.IsNoop() {
		return nil
	}
	return []Change{{Op: view, Rev: m.Rev}}
}

// inflightSettled: the server answered the resubmission of an in-flight
// op whose fate a snapshot hid. Applied or refused, the document is
// reloaded and the buffered edits rebased.
func (d *Document) inflightSettled(id string, ans any) {
	var errs []error
	de, refused := ans.(*DocError)
	if refused {
		errs = append(errs, de)
	}
	d.mu.Lock()
	if inf, ok := d.c.Inflight(); !ok || inf.ClientOpID != id || d.afterInflight == nil {
		d.mu.Unlock()
		return
	}
	if refused && storeTrouble(de) {
		// Nothing was saved and the op's fate is as unknown as before:
		// open again later and settle it then.
		d.afterInflight = nil
		d.mu.Unlock()
		d.pauseSaving(de)
		return
	}
	if len(errs) > 0 {
		// Refused: the in-flight op is not in the server's text. Rebase
		// from the text without it, so the reload drops it.
		s := d.shadow.String()
		d.afterInflight = &s
		d.refuseLocked(errs[0])
		d.stats.Refused++
	} else {
		rev := int64(0) // unknown unless the answer is an ack
		if a, ok := ans.(*protocol.DocAck); ok {
			rev = a.Rev
		}
		d.ackedLocked(rev)
	}
	d.fresh = true
	acks := d.takeAcksLocked()
	d.mu.Unlock()
	d.emit(nil, errs)
	d.emitAcks(acks)
	d.reopen(true)
}
