// Shared documents over the `collab` and `cursors` data channels
// (docs/PROTOCOL.md "Shared documents"): DocSession, the room's documents
// for one page. It holds the channels, requests and their answers, the
// list, presence, errors, opening and closing, and re-opening with the
// last revision when the channels come back. The rest is in modules of
// their own, called with the session and the open document:
//
//   otclient.js    the OT client state machine of one document (re-exported here)
//   docstream.js   a document's op stream: submits, ops, acks, catch-up, resubmission
//   doccursors.js  our caret out, others' in, placed and moved through edits
//   doccomments.js comment threads anchored to ranges
//   docstore.js    unacknowledged edits kept in IndexedDB across reloads
//   docoutage.js   the server could not store edits: keep them, re-open later
//
// No DOM here: docs-ui.js draws it.

import { takeThreads } from './doccomments.js';
import { CURSOR_REFRESH_MS, cursorGone, flushCursor, moveRemoteCursors, receiveCursor, refreshCursors } from './doccursors.js';
import { takeUpPending, persistSoon, pendingDocs } from './docstore.js';
import { randomPrefix, receiveAck, receiveOp, receiveOpened, submit } from './docstream.js';
import { Reassembler, Sender } from './framing.js';
import { storeTrouble, pauseSaving, resetOutage } from './docoutage.js';

export { SYNCHRONIZED, AWAITING_CONFIRM, AWAITING_WITH_BUFFER, OutOfOrder, DocClient } from './otclient.js';
export { colorFor } from './doccursors.js';

// The server drops a client silent for 30 s from document presence (and
// its cursors from the others' views): say we are here every 10 s.
const HEARTBEAT_MS = 10000;

/** An error the server sent on collab (docError), or one of ours. */
export class DocError extends Error {
  constructor(msg) {
    super(msg.message || msg.code);
    this.code = msg.code || '';
    this.doc = msg.doc || '';
    this.id = msg.id || '';
    this.reqId = msg.reqId || '';
  }
}

/**
 * The room's shared documents for one page. It outlives a Meeting: when the
 * page joins again, attach() the new channels and every open document is
 * opened again from its revision, with unacknowledged ops resubmitted.
 *
 * Events (on()): 'docs' (), 'doc' (docId, {kind: 'opened'|'remote'|'ack'|'reset', view}),
 * 'cursors' (docId), 'threads' (docId), 'presence' (docId), 'error' (DocError), 'status' ().
 */
export class DocSession {
  constructor({ nameOf = (id) => id, selfId = () => '' } = {}) {
    this.nameOf = nameOf;
    this.selfId = selfId;
    this.prefix = randomPrefix();
    this.docs = []; // [{id, title, readOnly, created, editors}]
    this.presence = new Map(); // docId -> [participantId]
    this.open = new Map(); // docId -> OpenDoc
    this.requests = new Map(); // reqId -> {resolve, reject, type, doc}
    this.nextReq = 1;
    this.errors = []; // every docError and local failure, newest last
    this.handlers = new Map();
    this.collab = null;
    this.cursors = null;
    this.sender = null;
    this.cursorSender = null;
    this.connected = false;
    this.canEdit = true; // the editDocs grant, set by the page once joined
    this.refreshTimer = setInterval(() => this.tick(), CURSOR_REFRESH_MS);
  }

  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(fn);
  }

  emit(event, ...args) {
    for (const fn of this.handlers.get(event) || []) {
      try { fn(...args); } catch (err) { console.error('huddle: document handler failed', err); }
    }
  }

  /** Uses a (new) pair of channels; re-opens what was open when they open. */
  attach(collab, cursors) {
    this.detach();
    this.collab = collab;
    this.cursors = cursors;
    this.sender = new Sender(collab);
    this.cursorSender = cursors;
    const collabIn = new Reassembler();
    const cursorsIn = new Reassembler();
    const onOpen = () => this.channelOpen();
    const onClose = () => this.channelClosed(collab);
    collab.addEventListener('open', onOpen);
    collab.addEventListener('close', onClose);
    collab.addEventListener('message', (ev) => this.frame(collabIn, ev.data, collab));
    cursors.addEventListener('message', (ev) => this.frame(cursorsIn, ev.data, cursors));
    this.detachFns = [() => collab.removeEventListener('open', onOpen), () => collab.removeEventListener('close', onClose)];
    if (collab.readyState === 'open') this.channelOpen();
  }

  detach() {
    for (const fn of this.detachFns || []) fn();
    this.detachFns = [];
    if (this.collab) this.channelClosed(this.collab);
    this.collab = this.cursors = this.sender = this.cursorSender = null;
  }

  /** Forget everything (leaving the room for good). */
  reset() {
    this.detach();
    this.docs = [];
    this.presence.clear();
    this.open.clear();
    this.emit('docs');
    this.emit('status');
  }

  channelOpen() {
    this.connected = true;
    this.send({ type: 'docList', reqId: this.reqId() });
    for (const d of this.open.values()) {
      if (d.saveFailed) resetOutage(d); // a new connection: try again
      if (d.loaded) this.sendOpen(d);
    }
    this.emit('status');
  }

  channelClosed(ch) {
    if (ch !== this.collab) return;
    const wasConnected = this.connected;
    this.connected = false;
    for (const [reqId, r] of this.requests) {
      this.requests.delete(reqId);
      r.reject(new DocError({ code: 'disconnected', message: 'the document connection closed', reqId }));
    }
    for (const d of this.open.values()) {
      d.opened = false;
      d.remoteCursors.clear();
    }
    if (wasConnected) this.emit('status');
  }

  frame(reassembler, data, ch) {
    let text;
    try {
      text = reassembler.add(data);
    } catch (err) {
      console.warn(`huddle: ${ch.label}: ${err.message}`);
      return;
    }
    if (text === null) return;
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      console.warn(`huddle: ${ch.label}: a message that is not JSON`, text.slice(0, 200));
      return;
    }
    try {
      this.handle(msg);
    } catch (err) {
      console.error('huddle: handling a document message failed', msg.type, err);
    }
  }

  reqId() { return `r${this.nextReq++}`; }

  send(msg) {
    if (!this.sender || !this.connected) return false;
    if (!this.sender.send(msg)) {
      this.fail({ code: 'too_large', message: 'the document connection is backed up; try again in a moment', doc: msg.doc });
      return false;
    }
    return true;
  }

  /** Sends a request and resolves with its answer (docs, opened, done, historyList). */
  request(msg) {
    const reqId = this.reqId();
    return new Promise((resolve, reject) => {
      if (!this.connected) {
        reject(new DocError({ code: 'disconnected', message: 'not connected to the document service yet' }));
        return;
      }
      this.requests.set(reqId, { resolve, reject, type: msg.type, doc: msg.doc });
      if (!this.send({ ...msg, reqId })) {
        this.requests.delete(reqId);
        reject(new DocError({ code: 'disconnected', message: 'could not send the request' }));
      }
    });
  }

  settle(reqId, value, err) {
    const r = reqId && this.requests.get(reqId);
    if (!r) return false;
    this.requests.delete(reqId);
    if (err) r.reject(err);
    else r.resolve(value);
    return true;
  }

  /** Records an error; quiet ones (shown in the status instead) are not emitted. */
  fail(msg, { quiet = false } = {}) {
    const err = new DocError(msg);
    this.errors.push({ code: err.code, message: err.message, doc: err.doc, id: err.id, reqId: err.reqId, at: Date.now() });
    if (this.errors.length > 100) this.errors.shift();
    if (!quiet) this.emit('error', err);
    return err;
  }

  // ---- requests the UI makes ----

  list() { return this.request({ type: 'docList' }); }

  async create(title, text = '') {
    const before = new Set(this.docs.map((d) => d.id));
    const msg = { type: 'docCreate', title };
    if (text) msg.text = text;
    const answer = await this.request(msg);
    if (answer.doc) return answer.doc; // the server names the new document
    const fresh = (answer.docs || []).filter((d) => !before.has(d.id));
    const mine = fresh.find((d) => d.title === title) || fresh[fresh.length - 1];
    return mine ? mine.id : '';
  }

  rename(doc, title) { return this.request({ type: 'docRename', doc, title }); }
  remove(doc) { return this.request({ type: 'docDelete', doc }); }
  lock(doc, readOnly) { return this.request({ type: 'docLock', doc, readOnly }); }
  undo(doc) { return this.request({ type: 'undo', doc }); }
  redo(doc) { return this.request({ type: 'redo', doc }); }
  history(doc) { return this.request({ type: 'history', doc }); }
  nameVersion(doc, name) { return this.request({ type: 'nameVersion', doc, name }); }
  restore(doc, { name, rev } = {}) {
    const msg = { type: 'restore', doc };
    if (name) msg.name = name;
    else msg.rev = rev;
    return this.request(msg);
  }

  /** Opens a document; resolves once its text is here. */
  openDoc(doc) {
    let d = this.open.get(doc);
    if (d && d.opened) return Promise.resolve(d);
    if (!d) {
      d = {
        id: doc, client: null, opened: false, readOnly: false,
        remoteCursors: new Map(), // participant -> {participant, name, color, anchor, head} (local code points)
        pendingCursors: new Map(), // participant -> cursor message ahead of our revision
        goneSeq: new Map(), // participant -> seq of its last cursorGone: older cursors are dropped
        threads: new Map(), // comment threads (doccomments.js)
        selection: null, cursorDirty: false, lastCursorAt: 0, cursorTimer: 0,
        waiters: [],
        loaded: false, // unacknowledged edits from an earlier page were looked for
        saveTimer: 0,
      };
      this.open.set(doc, d);
      this.takeUpPending(d).finally(() => {
        d.loaded = true;
        if (this.open.get(doc) === d && this.connected && !d.opening) this.sendOpen(d);
      });
    }
    const p = new Promise((resolve, reject) => d.waiters.push({ resolve, reject }));
    if (d.saveFailed) resetOutage(d); // opened again by hand: start over
    if (d.loaded && this.connected && !d.opening && !d.retryTimer) this.sendOpen(d);
    return p;
  }

  // ---- unacknowledged edits across reloads (docstore.js) ----

  pendingKey(doc) { return this.storeKey ? `${this.storeKey}|${doc}` : ''; }

  /** Takes up the unacknowledged edits an earlier page left for d. */
  takeUpPending(d) { return takeUpPending(this.pendingKey(d.id), d); }

  /** Ids of the documents an earlier page left unacknowledged edits in. */
  pendingDocs() {
    if (!this.storeKey || typeof indexedDB === 'undefined') return Promise.resolve([]);
    return pendingDocs(this.storeKey).catch(() => []);
  }

  /** Saves (or clears) d's unacknowledged edits soon. */
  persist(d) { persistSoon(this.pendingKey(d.id), d); }

  sendOpen(d, { snapshot = false } = {}) {
    const msg = { type: 'open', reqId: this.reqId(), doc: d.id };
    if (d.client && !snapshot) msg.rev = d.client.rev;
    d.opening = msg.reqId;
    d.opened = false;
    this.send(msg);
  }

  closeDoc(doc) {
    const d = this.open.get(doc);
    if (!d) return;
    this.open.delete(doc);
    clearTimeout(d.cursorTimer);
    resetOutage(d);
    for (const w of d.waiters) w.reject(new DocError({ code: 'closed', message: 'document closed', doc }));
    if (this.connected) this.send({ type: 'close', reqId: this.reqId(), doc });
  }

  // ---- local edits and cursors ----

  /** An edit the user made (op against the current local text). */
  edit(doc, op) {
    const d = this.open.get(doc);
    if (!d || !d.client) throw new Error(`document ${doc} is not open`);
    const sub = d.client.applyLocal(op);
    moveRemoteCursors(d, op);
    this.persist(d);
    if (sub && d.opened) submit(this, d, sub);
    this.emit('status');
    if (d.remoteCursors.size) this.emit('cursors', doc);
  }

  /** Our selection (code points) in doc; sent on `cursors` at most every 50 ms, once synchronized. */
  setSelection(doc, anchor, head) {
    const d = this.open.get(doc);
    if (!d) return;
    if (d.selection && d.selection.anchor === anchor && d.selection.head === head && !d.cursorDirty) return;
    d.selection = { anchor, head };
    d.cursorDirty = true;
    flushCursor(this, d);
  }

  /** Every CURSOR_REFRESH_MS: the presence heartbeat when due, and our cursors said again. */
  tick() {
    if (this.connected && Date.now() - (this.lastBeat || 0) >= HEARTBEAT_MS) {
      this.lastBeat = Date.now();
      this.send({ type: 'heartbeat' });
    }
    refreshCursors(this);
  }

  // ---- what the server sends ----

  handle(msg) {
    switch (msg.type) {
      case 'docs': return this.onDocs(msg);
      case 'opened': return receiveOpened(this, msg);
      case 'op': return receiveOp(this, msg);
      case 'ack': return receiveAck(this, msg);
      case 'done': return this.settle(msg.reqId, msg);
      case 'historyList': return this.settle(msg.reqId, msg);
      case 'docError': return this.onError(msg);
      case 'docPresence':
        this.presence.set(msg.doc, msg.participants || []);
        return this.emit('presence', msg.doc);
      case 'lagging': return this.onLagging(msg);
      case 'cursor': return this.onCursor(msg);
      case 'comments': return takeThreads(this, this.open.get(msg.doc), msg.threads);
      case 'thread':
        takeThreads(this, this.open.get(msg.doc), [msg.thread]);
        return this.settle(msg.reqId, msg.thread);
      case 'cursorGone': return cursorGone(this, msg);
      default:
        console.warn('huddle: unknown document message', msg.type);
    }
  }

  onDocs(msg) {
    this.docs = msg.docs || [];
    for (const info of this.docs) {
      if (info.editors) this.presence.set(info.id, info.editors);
      // A lock or unlock (docLock) shows in the list; without the editDocs
      // grant a document stays read-only either way.
      const d = this.open.get(info.id);
      if (d && d.opened) d.readOnly = !this.canEdit || !!info.readOnly;
    }
    const ids = new Set(this.docs.map((x) => x.id));
    for (const id of [...this.open.keys()]) {
      if (!ids.has(id)) {
        // Deleted by someone: nothing more will come for it.
        const d = this.open.get(id);
        this.open.delete(id);
        for (const w of d.waiters) w.reject(new DocError({ code: 'unknown_doc', message: 'the document was deleted', doc: id }));
        this.emit('doc', id, { kind: 'deleted' });
      }
    }
    this.settle(msg.reqId, msg);
    this.emit('docs');
  }

  onLagging(msg) {
    const d = this.open.get(msg.doc);
    if (d) this.sendOpen(d);
  }

  onError(msg) {
    const d = msg.doc ? this.open.get(msg.doc) : null;
    if (storeTrouble(msg.code) && d && d.client && (!msg.reqId || msg.reqId === d.opening)) {
      // Nothing unacknowledged was saved: keep it, open again later
      // (docoutage.js). The status says so; no error box.
      if (msg.reqId) d.opening = null;
      if (pauseSaving(this, d, this.fail(msg, { quiet: true }))) return;
    }
    const err = this.fail(msg);
    if (msg.reqId) {
      if (d && d.opening === msg.reqId) {
        // The open itself was refused.
        d.opening = null;
        this.open.delete(d.id);
        for (const w of d.waiters.splice(0)) w.reject(err);
        this.emit('doc', d.id, { kind: 'closed' });
      }
      this.settle(msg.reqId, null, err);
      return;
    }
    if (msg.id && d && d.client) {
      if (d.client.inflight && d.client.inflight.id === msg.id) {
        // Our op was refused and changed nothing on the server: drop it and
        // what was typed on top, and take the server's text again.
        d.client.inflight = null;
        d.client.buffer = null;
        d.client = null;
        this.sendOpen(d, { snapshot: true });
      }
      return;
    }
    if (msg.code === 'revision_too_old' && d) this.sendOpen(d, { snapshot: true });
  }

  /** Another participant's cursor (from the channel, or the test hook deliverCursor). */
  onCursor(msg) { receiveCursor(this, msg); }

  // ---- read access for the UI and the test hooks ----

  doc(id) { return this.open.get(id) || null; }
  info(id) { return this.docs.find((d) => d.id === id) || null; }
}
