package sdk

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/huddle-rtc/huddle/collab/client"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// When the server could not store a document's edits (cluster mode: its
// store, Redis, is unreachable, or the room moved to another node), it
// acknowledges nothing, drops its copy of the document and tells the
// client so: a docError with code unavailable, for the refused edit (with
// its id) and for the document's stream (with only the doc). Nothing of
// what this client has not seen acknowledged was saved, so nothing is
// rolled back: the unacknowledged edits stay (the in-flight op with its
// client op id, later edits composed behind it), the document stops
// sending, and it is opened again after a backoff with jitter. Once the
// open is answered, the catch-up says whether the in-flight op did land
// (it comes back with its id: the ack) and what is still unacknowledged
// goes again with the same id, which the server applies at most once.
// After ReopenTries failed opens in a row without progress, the document
// gives up (ErrSaveFailed).

// ReopenTries is how many times in a row a document whose edits the server
// could not store is opened again before it gives up. The waits between
// tries double from ReopenFirstWait up to ReopenMaxWait, each drawn at
// random from its upper half: about 28 s in all, at most.
const (
	ReopenTries     = 10
	ReopenFirstWait = 250 * time.Millisecond
	ReopenMaxWait   = 4 * time.Second
)

// backoff is the retry schedule in force: the constants above, which tests
// shorten (export_test.go); atomic because a test's leftover rooms may
// still read it.
var backoff = struct{ tries, first, max atomic.Int64 }{}

func init() {
	backoff.tries.Store(ReopenTries)
	backoff.first.Store(int64(ReopenFirstWait))
	backoff.max.Store(int64(ReopenMaxWait))
}

// ErrSavePaused is what OnError (and Document.SaveError) report while the
// server cannot store a document's edits: they are kept and sent again,
// with their ids, once the document is open again. The server's
// *DocError (code unavailable) is wrapped with it.
var ErrSavePaused = errors.New("saving paused: the server could not store edits; they are kept and sent again when it can")

// ErrSaveFailed is returned (wrapped) by WaitSynced, ApplyOp and the other
// edits of a document that gave up after ReopenTries: the server still
// could not store its edits. The unsaved edits are still in Text(): close
// the document, open it again and apply them again.
var ErrSaveFailed = errors.New("saving failed: the server could not store edits")

// outage is a Document's state while the server cannot store its edits.
type outage struct {
	tries  int         // opens tried since the last progress
	timer  *time.Timer // the next open, pending
	last   error       // the server's last refusal, while paused
	failed error       // gave up: final
}

// storeTrouble reports whether a docError says the server's copy of the
// document is gone with nothing saved (unavailable), or that the server
// does not have it open for this client (not_open: an edit or cursor
// that arrived after the stream ended): either way, open it again.
func storeTrouble(de *DocError) bool {
	return de.Code == protocol.DocErrUnavailable || de.Code == protocol.DocErrNotOpen
}

// pauseSaving handles a docError that says the server's copy is gone: the
// document stops sending and opens again after a backoff. A message that
// arrives while an open is out concerns the stream or a submit from before
// it (the server answers an open before anything of its new stream), so
// the open's own answer decides; one that arrives while a retry is already
// waiting adds nothing.
func (d *Document) pauseSaving(de *DocError) {
	d.mu.Lock()
	if d.closed || !d.opened || d.out.failed != nil {
		d.mu.Unlock()
		return
	}
	_, gen := d.docs.currentLinkGen()
	if (d.syncing && d.openReq != "" && d.syncGen == gen) || d.out.timer != nil {
		d.mu.Unlock()
		return
	}
	d.syncing, d.openReq = true, ""
	if d.afterInflight != nil {
		// A resubmission whose fate a snapshot hid is answered no more:
		// the next open settles it, as after a reconnect (disconnected).
		d.afterInflight = nil
		d.docs.mu.Lock()
		delete(d.docs.rawWait, d.lastSent.ClientOpID)
		d.docs.mu.Unlock()
	}
	d.out.last = de
	if d.out.tries >= int(backoff.tries.Load()) {
		err := d.giveUpLocked(de)
		d.mu.Unlock()
		d.emit(nil, []error{err})
		return
	}
	wait := min(time.Duration(backoff.first.Load())<<d.out.tries, time.Duration(backoff.max.Load()))
	wait = wait/2 + rand.N(wait/2+1)
	d.out.tries++
	d.stats.Paused++
	d.out.timer = time.AfterFunc(wait, d.retryOpen)
	d.signalLocked()
	d.mu.Unlock()
	d.docs.log.Info("documents: the server could not store edits; opening the document again", "doc", d.id, "try", d.out.tries, "in", wait, "err", de)
	d.emit(nil, []error{fmt.Errorf("document %s: %w (%w)", d.id, ErrSavePaused, de)})
}

// retryOpen is the backoff timer's end: open the document again.
func (d *Document) retryOpen() {
	d.mu.Lock()
	d.out.timer = nil
	stop := d.closed || d.out.failed != nil
	d.mu.Unlock()
	if !stop {
		d.reopen(true)
	}
}

// giveUpLocked makes the document's outage final: nothing is sent any
// more, and every edit and wait returns the error.
func (d *Document) giveUpLocked(last error) error {
	d.out.failed = fmt.Errorf("document %s: %w after %d tries to open it again (the last: %w); the unsaved edits are still in Text(): close the document, open it again and reapply them",
		d.id, ErrSaveFailed, d.out.tries, last)
	d.stopRetryLocked()
	d.signalLocked()
	return d.out.failed
}

func (d *Document) stopRetryLocked() {
	if d.out.timer != nil {
		d.out.timer.Stop()
		d.out.timer = nil
	}
}

// progressLocked: the server saved something of ours (an ack), or the
// document is open again with nothing left to save: the outage is over.
func (d *Document) progressLocked() {
	d.out.tries, d.out.last = 0, nil
}

// openedAfterOutageLocked runs when an open was answered: with nothing in
// flight there is nothing left to save, so the outage is over; otherwise
// it ends with the in-flight op's ack.
func (d *Document) openedAfterOutageLocked() {
	if d.c.State() == client.Synchronized {
		d.progressLocked()
	}
}

// SaveError says why edits are not reaching the server now: nil normally;
// an error wrapping ErrSavePaused (and the server's *DocError) while the
// document waits to open again after the server could not store them; one
// wrapping ErrSaveFailed once it gave up (final).
func (d *Document) SaveError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.out.failed != nil:
		return d.out.failed
	case d.out.last != nil:
		return fmt.Errorf("document %s: %w (%w)", d.id, ErrSavePaused, d.out.last)
	}
	return nil
}
