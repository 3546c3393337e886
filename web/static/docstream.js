// An open document's op stream: our edits go out as `submit`s, and the
// server's `opened`, `op` and `ack` messages drive the document's OT client
// (otclient.js). `opened` brings the text, or the ops since our revision,
// which rebase what is unacknowledged; what is still in flight then goes
// again with the same id, so the server applies it once. An op or ack that
// does not fit the client's state re-opens the document. Kept apart from
// DocSession (docclient.js), which routes these messages here.

import { DocClient, SYNCHRONIZED } from './otclient.js';
import { placeThreads, unplaceThreads } from './doccomments.js';
import { flushCursor, moveRemoteCursors, placeWaitingCursors } from './doccursors.js';
import { savingResumed } from './docoutage.js';

/** A random prefix for this page's client op ids (a client taken up from docstore.js keeps its own). */
export function randomPrefix() {
  const a = new Uint8Array(6);
  crypto.getRandomValues(a);
  return `${[...a].map((b) => b.toString(16).padStart(2, '0')).join('')}-`;
}

export function submit(session, d, sub) {
  session.send({ type: 'submit', doc: d.id, rev: sub.rev, id: sub.id, op: sub.op });
}

/** The answer to an open: a snapshot, or the catch-up since our revision. */
export function receiveOpened(session, msg) {
  const d = session.open.get(msg.doc);
  if (!d) return; // closed meanwhile
  if (d.opening && msg.reqId && msg.reqId !== d.opening) return; // an older open's answer
  d.opening = null;
  d.readOnly = !!msg.readOnly; // no editDocs grant, or locked
  d.remoteCursors.clear();
  d.pendingCursors.clear();
  unplaceThreads(d); // placed again from the comments after opened
  let kind = 'opened';
  if (typeof msg.text === 'string') {
    if (d.client && (d.client.inflight || d.client.buffer)) {
      // The server no longer has the ops since our revision: our unsent
      // edits cannot be rebased. Say so rather than lose them silently.
      session.fail({ code: 'revision_too_old', doc: d.id, message: 'the document changed too much while you were away; your last unsaved edits could not be merged' });
    }
    d.client = new DocClient(session.prefix, msg.rev, msg.text);
    if (kind === 'opened' && d.opened === false && d.waiters.length === 0) kind = 'reset';
  } else {
    if (!d.client) {
      session.fail({ code: 'bad_message', doc: d.id, message: 'the server sent catch-up ops for a document this page never had' });
      return;
    }
    for (const o of msg.ops || []) {
      if (o.rev <= d.client.rev) continue;
      const { view } = d.client.receive(o.rev, o.id, o.op);
      if (view) moveRemoteCursors(d, view);
    }
    kind = 'reset';
  }
  d.opened = true;
  // Whatever is still unacknowledged goes again, with the same id.
  const again = d.client.resubmit();
  if (again) submit(session, d, again);
  else if (d.client.state === SYNCHRONIZED) savingResumed(d); // nothing left to save
  for (const w of d.waiters.splice(0)) w.resolve(d);
  session.emit('doc', d.id, { kind });
  session.emit('status');
  d.cursorDirty = !!d.selection;
  flushCursor(session, d);
  session.settle(msg.reqId, msg);
}

/** One op of the document's stream: someone else's, or ours back (the ack). */
export function receiveOp(session, msg) {
  const d = session.open.get(msg.doc);
  if (!d || !d.opened || !d.client) return;
  if (msg.rev <= d.client.rev) return; // seen (e.g. in a catch-up)
  let r;
  try {
    r = d.client.receive(msg.rev, msg.id, msg.op);
  } catch (err) {
    return resync(session, d, err);
  }
  if (r.view) {
    moveRemoteCursors(d, r.view);
    session.emit('doc', d.id, { kind: 'remote', view: r.view, author: msg.author });
  } else {
    savingResumed(d); // our own op, back in the stream: saved
    session.emit('doc', d.id, { kind: 'ack' });
  }
  if (r.send) submit(session, d, r.send);
  afterRevision(session, d);
}

export function receiveAck(session, msg) {
  const d = session.open.get(msg.doc);
  if (!d || !d.opened || !d.client) return;
  const c = d.client;
  if (!c.inflight || c.inflight.id !== msg.id) {
    // A de-duplicated resubmission answered with its original revision,
    // whose op we already saw in the stream: nothing to do.
    if (msg.rev <= c.rev) return;
    return resync(session, d, new Error(`ack for ${msg.id}, which is not in flight`));
  }
  let send;
  try {
    send = c.ack(msg.rev, msg.id);
  } catch (err) {
    return resync(session, d, err);
  }
  savingResumed(d);
  if (send) submit(session, d, send);
  session.emit('doc', d.id, { kind: 'ack' });
  afterRevision(session, d);
}

function afterRevision(session, d) {
  session.emit('status');
  session.persist(d);
  // Cursors and threads that were ahead of us may fit now.
  placeWaitingCursors(session, d);
  if (placeThreads(d)) session.emit('threads', d.id);
  flushCursor(session, d);
}

function resync(session, d, err) {
  console.warn(`huddle: document ${d.id}: ${err.message}; opening it again`);
  session.sendOpen(d);
}
