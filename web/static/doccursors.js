// Carets and selections in the shared documents, on the lossy `cursors`
// channel (docs/PROTOCOL.md "Cursors"). Ours goes out at most every 50 ms,
// only while nothing of ours is unacknowledged (the server reads it against
// its revision), and again every 2 s in case it was lost. Others' arrive at
// a server revision: placed in the local text at once, or held until the
// document reaches that revision, then moved through every later edit, and
// dropped on `cursorGone` (even when it overtook their last cursor). Kept
// apart from DocSession (docclient.js), which calls these with the open
// document d ({remoteCursors, pendingCursors, goneSeq, selection, ...}).

import * as ot from './ot.js';
import { moveThreads } from './doccomments.js';
import { SYNCHRONIZED } from './otclient.js';

const CURSOR_INTERVAL_MS = 50;
export const CURSOR_REFRESH_MS = 2000; // cursors are lossy: say it again now and then
const MAX_GONE = 1024; // cursorGone seqs remembered per document

/** A colour for a participant the server named none for. */
export function colorFor(id) {
  let h = 0;
  for (const ch of String(id)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${h % 360}, 70%, 55%)`;
}

/** Sends our selection in d if it changed, as soon as the interval and the OT state allow. */
export function flushCursor(session, d) {
  if (!d.cursorDirty || !d.client || !d.opened || d.cursorTimer) return;
  // Our text includes unacknowledged edits; the server would read the
  // position against its own revision. Wait for the ack (flushCursor runs again).
  if (d.client.state !== SYNCHRONIZED) return;
  const wait = d.lastCursorAt + CURSOR_INTERVAL_MS - Date.now();
  if (wait > 0) {
    d.cursorTimer = setTimeout(() => { d.cursorTimer = 0; flushCursor(session, d); }, wait);
    return;
  }
  const ch = session.cursorSender;
  if (!ch || ch.readyState !== 'open') return;
  if (ch.bufferedAmount > 16 << 10) {
    // Lossy anyway: try again shortly rather than pile up.
    d.cursorTimer = setTimeout(() => { d.cursorTimer = 0; flushCursor(session, d); }, CURSOR_INTERVAL_MS);
    return;
  }
  try {
    ch.send(JSON.stringify({ type: 'cursor', doc: d.id, rev: d.client.rev, anchor: d.selection.anchor, head: d.selection.head }));
  } catch (err) {
    console.warn('huddle: cursor send failed', err);
    return;
  }
  d.cursorDirty = false;
  d.lastCursorAt = Date.now();
}

/** Says each open document's selection again if it was not sent for CURSOR_REFRESH_MS. */
export function refreshCursors(session) {
  for (const d of session.open.values()) {
    if (d.selection && Date.now() - d.lastCursorAt > CURSOR_REFRESH_MS) {
      d.cursorDirty = true;
      flushCursor(session, d);
    }
  }
}

/** Another participant's `cursor` message. */
export function receiveCursor(session, msg) {
  const d = session.open.get(msg.doc);
  if (!d || !d.client || !msg.participant || msg.participant === session.selfId()) return;
  // Sent before that participant's cursorGone (which travels on the other
  // channel and overtook it): the caret is gone.
  if (msg.seq && msg.seq <= (d.goneSeq.get(msg.participant) || 0)) return;
  if (msg.rev > d.client.rev) {
    d.pendingCursors.set(msg.participant, msg);
    return;
  }
  if (placeCursor(session, d, msg)) session.emit('cursors', d.id);
}

/** `cursorGone`: the participant left the document (or the room). */
export function cursorGone(session, msg) {
  const d = session.open.get(msg.doc);
  if (!d) return;
  if (msg.seq > (d.goneSeq.get(msg.participant) || 0)) {
    // Bounded: forgetting one only lets an overtaken cursor show until the next.
    if (!d.goneSeq.has(msg.participant) && d.goneSeq.size >= MAX_GONE) d.goneSeq.delete(d.goneSeq.keys().next().value);
    d.goneSeq.set(msg.participant, msg.seq);
  }
  d.pendingCursors.delete(msg.participant);
  if (d.remoteCursors.delete(msg.participant)) session.emit('cursors', msg.doc);
}

/** Places the cursors that were ahead of d's revision and fit now. */
export function placeWaitingCursors(session, d) {
  let moved = false;
  for (const [p, msg] of d.pendingCursors) {
    if (msg.rev <= d.client.rev) {
      d.pendingCursors.delete(p);
      moved = placeCursor(session, d, msg) || moved;
    }
  }
  if (moved) session.emit('cursors', d.id);
}

function placeCursor(session, d, msg) {
  const sel = d.client.remoteSelection({ anchor: msg.anchor | 0, head: msg.head | 0 }, msg.rev);
  if (!sel) return false;
  const len = ot.cpLen(d.client.text);
  const clamp = (n) => Math.max(0, Math.min(len, n));
  d.remoteCursors.set(msg.participant, {
    participant: msg.participant,
    name: msg.name || session.nameOf(msg.participant) || 'Guest',
    color: msg.color || colorFor(msg.participant),
    anchor: clamp(sel.anchor),
    head: clamp(sel.head),
    rev: msg.rev, // the server revision and number it came with (tests replay it)
    seq: msg.seq || 0,
  });
  return true;
}

/** Moves others' cursors, and the comment threads, through op (an edit of d's local text). */
export function moveRemoteCursors(d, op) {
  moveThreads(d, op);
  for (const c of d.remoteCursors.values()) {
    const s = ot.transformSelection(c, op, false);
    c.anchor = s.anchor;
    c.head = s.head;
  }
}
