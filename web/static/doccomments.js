// Comment threads of the shared documents (docs/PROTOCOL.md, "Comment
// threads"): each thread is anchored to a range [start, end) of a document
// and moves with every edit as another participant's cursor does. The
// server sends a document's threads after `opened` and every changed
// thread as `thread`; a thread reported at a revision this page has not
// reached waits until it has. DocSession (docclient.js, docstream.js,
// doccursors.js) calls the hooks below; the UI (comments-ui.js) and the
// test hooks call the requests.

import * as ot from './ot.js';
import { SYNCHRONIZED } from './otclient.js';

/** Takes threads from the server into document d and places them. */
export function takeThreads(session, d, threads) {
  if (!d || !d.client) return;
  for (const w of threads || []) {
    d.threads.set(w.id, { wire: w, start: 0, end: 0, placed: false });
  }
  placeThreads(d);
  session.emit('threads', d.id);
}

/** Places the threads whose revision the document has reached. */
export function placeThreads(d) {
  let moved = false;
  for (const t of d.threads.values()) {
    if (t.placed || t.wire.rev > d.client.rev) continue;
    const sel = d.client.remoteSelection({ anchor: t.wire.start, head: t.wire.end }, t.wire.rev);
    if (!sel) continue;
    const len = ot.cpLen(d.client.text);
    t.start = Math.max(0, Math.min(len, Math.min(sel.anchor, sel.head)));
    t.end = Math.max(0, Math.min(len, Math.max(sel.anchor, sel.head)));
    t.placed = true;
    moved = true;
  }
  return moved;
}

/** Moves placed ranges through op, an edit of the local text. */
export function moveThreads(d, op) {
  for (const t of d.threads.values()) {
    if (!t.placed) continue;
    const s = ot.transformSelection({ anchor: t.start, head: t.end }, op, false);
    t.start = s.anchor;
    t.end = s.head;
  }
}

/** Forgets where ranges are (the text was replaced); the server sends them again. */
export function unplaceThreads(d) {
  for (const t of d.threads.values()) t.placed = false;
}

/** The threads of doc, oldest first: {id, start, end, placed, resolved, comments}. */
export function threadsOf(session, doc) {
  const d = session.open.get(doc);
  if (!d) return [];
  return [...d.threads.values()]
    .map((t) => ({ id: t.wire.id, start: t.start, end: t.end, placed: t.placed, resolved: !!t.wire.resolved,
      created: t.wire.created, comments: t.wire.comments || [] }))
    .sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.id < b.id ? -1 : 1));
}

/**
 * Opens a thread on [start, end) (code points of the local text). The
 * range is named at a server revision, so this waits for the page's own
 * edits to be acknowledged first.
 */
export async function createThread(session, doc, start, end, text) {
  const d = session.open.get(doc);
  if (!d || !d.client) throw new Error(`document ${doc} is not open`);
  for (let i = 0; d.client.state !== SYNCHRONIZED || !d.opened; i++) {
    if (i > 200) throw new Error('the document did not settle; try again');
    await new Promise((r) => setTimeout(r, 50));
  }
  return session.request({ type: 'commentCreate', doc, rev: d.client.rev, start, end, text });
}

export function replyThread(session, doc, thread, text) {
  return session.request({ type: 'commentReply', doc, thread, text });
}

export function editComment(session, doc, thread, comment, text) {
  return session.request({ type: 'commentEdit', doc, thread, comment, text });
}

export function resolveThread(session, doc, thread, resolved) {
  return session.request({ type: 'commentResolve', doc, thread, resolved });
}
