// The OT client state machine for one shared document, the same as Go's
// collab/client: one op in flight, later local edits composed into a
// buffer, remote ops transformed over both (docstream.js drives it).

import * as ot from './ot.js';

export const SYNCHRONIZED = 'synchronized';
export const AWAITING_CONFIRM = 'awaiting confirm';
export const AWAITING_WITH_BUFFER = 'awaiting with buffer';

const HISTORY_KEEP = 500; // server ops kept to move late cursors forward

export class OutOfOrder extends Error {}

/**
 * The client state machine for one document (collab/client in Go).
 *   synchronized --local--> awaiting confirm --local--> awaiting with buffer
 *        ^---------ack-----------+   ^------------ack--------------+
 */
export class DocClient {
  constructor(idPrefix, rev, text) {
    this.prefix = idPrefix;
    this.seq = 0;
    this.rev = rev;
    this.text = text;
    this.inflight = null; // {id, rev, op}: op is against revision this.rev (transformed as remote ops arrive)
    this.buffer = null; // composed local edits made since inflight was sent
    // Recent server ops [{rev, op}] in server form, to bring a cursor
    // reported at an older revision forward.
    this.history = [];
  }

  get state() {
    if (!this.inflight) return SYNCHRONIZED;
    return this.buffer ? AWAITING_WITH_BUFFER : AWAITING_CONFIRM;
  }

  newSubmission(op) {
    this.seq++;
    return { id: `${this.prefix}${this.seq}`, rev: this.rev, op };
  }

  /** A local edit (already in the view). Returns the submission to send now, or null. */
  applyLocal(op) {
    const text = ot.apply(this.text, op); // throws OpError, changing nothing
    this.text = text;
    if (ot.isNoop(op)) return null;
    op = ot.stampSeen(ot.normalize(op), this.rev, !!this.inflight);
    if (!this.inflight) {
      this.inflight = this.newSubmission(op);
      return this.inflight;
    }
    this.buffer = this.buffer ? ot.compose(this.buffer, op) : op;
    return null;
  }

  /** The server acknowledged the in-flight op at rev; returns the next submission, if any. */
  ack(rev, id) {
    if (!this.inflight || this.inflight.id !== id) throw new Error(`ack ${id} at revision ${rev}: not in flight`);
    if (rev !== this.rev + 1) throw new OutOfOrder(`ack ${id} at revision ${rev}, client at ${this.rev}`);
    this.remember(rev, this.inflight.op);
    this.rev = rev;
    this.inflight = null;
    if (!this.buffer) return null;
    this.inflight = this.newSubmission(this.buffer);
    this.buffer = null;
    return this.inflight;
  }

  /** Someone else's op at rev: returns it transformed for the local text. */
  remote(rev, op) {
    if (rev !== this.rev + 1) throw new OutOfOrder(`remote op at revision ${rev}, client at ${this.rev}`);
    op = ot.normalize(op);
    const server = op;
    if (this.inflight) {
      const mine = this.inflight.op;
      this.inflight.op = ot.transform(mine, op, ot.RIGHT);
      op = ot.transform(op, mine, ot.LEFT);
      if (this.buffer) {
        const buf = this.buffer;
        this.buffer = ot.transform(buf, op, ot.RIGHT);
        op = ot.transform(op, buf, ot.LEFT);
      }
    }
    this.text = ot.apply(this.text, op);
    this.remember(rev, server);
    this.rev = rev;
    return op;
  }

  /** One op of the server's stream: our in-flight one (by id) is its ack. */
  receive(rev, id, op) {
    if (this.inflight && id && id === this.inflight.id) return { view: null, send: this.ack(rev, id) };
    return { view: this.remote(rev, op), send: null };
  }

  /**
   * The in-flight op to send again after a reconnect, same id. Its base is
   * the current revision: it was transformed over every op since it was
   * first sent, and the server de-duplicates by id before looking at it.
   */
  resubmit() {
    if (!this.inflight) return null;
    this.inflight.rev = this.rev;
    return this.inflight;
  }

  remember(rev, op) {
    this.history.push({ rev, op });
    if (this.history.length > HISTORY_KEEP) this.history.splice(0, this.history.length - HISTORY_KEEP);
  }

  /**
   * Maps a selection another participant reported at server revision rev
   * into the local text; null if rev is ahead of us (not yet) or too old.
   */
  remoteSelection(sel, rev) {
    if (rev > this.rev) return null;
    if (rev < this.rev) {
      const first = this.history.findIndex((h) => h.rev === rev + 1);
      if (first < 0) return null;
      for (let i = first; i < this.history.length; i++) sel = ot.transformSelection(sel, this.history[i].op, false);
    }
    if (this.inflight) sel = ot.transformSelection(sel, this.inflight.op, false);
    if (this.buffer) sel = ot.transformSelection(sel, this.buffer, false);
    return sel;
  }
}
