// Unacknowledged document edits kept in IndexedDB, so that they survive a
// reload or a closed tab while the connection is down. Per document (and
// room and identity: the key) the page keeps what its OT client needs to
// carry on: the last server revision, the local text, the op in flight
// with its client op id, the composed edits behind it, and the id
// sequence. After a reload the document is opened again from that
// revision; the catch-up rebases the edits and the op in flight goes again
// with the same id, so the server applies it exactly once.

import { DocClient } from './otclient.js';

const DB = 'huddle-docs';
const STORE = 'pending';

let dbp = null;
function db() {
  if (!dbp) {
    dbp = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    dbp.catch(() => { dbp = null; });
  }
  return dbp;
}

function tx(mode, fn) {
  return db().then((d) => new Promise((resolve, reject) => {
    const t = d.transaction(STORE, mode);
    const req = fn(t.objectStore(STORE));
    t.oncomplete = () => resolve(req ? req.result : undefined);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error);
  }));
}

/** The saved state of key, or undefined. */
export function loadPending(key) {
  return tx('readonly', (s) => s.get(key));
}

/** Saves state under key (null deletes it). */
export function savePending(key, state) {
  return tx('readwrite', (s) => (state ? s.put(state, key) : s.delete(key)));
}

/** The state of a DocClient worth keeping: null when nothing is unacknowledged. */
export function pendingOf(c) {
  if (!c || !c.inflight) return null;
  return { v: 1, rev: c.rev, text: c.text, prefix: c.prefix, seq: c.seq,
    inflight: { id: c.inflight.id, rev: c.inflight.rev, op: c.inflight.op }, buffer: c.buffer };
}

/** The documents with edits kept under keys that start with prefix + '|'. */
export function pendingDocs(prefix) {
  return tx('readonly', (s) => s.getAllKeys()).then((keys) => (keys || [])
    .filter((k) => typeof k === 'string' && k.startsWith(`${prefix}|`))
    .map((k) => k.slice(prefix.length + 1)));
}

/** Gives open document d (without a client yet) the edits kept under key. */
export async function takeUpPending(key, d) {
  if (!key || d.client || typeof indexedDB === 'undefined') return;
  let st;
  try {
    st = await loadPending(key);
  } catch (err) {
    console.warn('huddle: could not read unsaved document edits', err);
    return;
  }
  if (!st || st.v !== 1 || d.client) return;
  const c = new DocClient(st.prefix, st.rev, st.text);
  c.seq = st.seq;
  c.inflight = st.inflight;
  c.buffer = st.buffer;
  d.client = c;
  console.info(`huddle: document ${d.id}: took up unsaved edits from revision ${st.rev}`);
}

/** Saves (or clears) open document d's unacknowledged edits under key soon. */
export function persistSoon(key, d) {
  if (!key || typeof indexedDB === 'undefined' || d.saveTimer) return;
  d.saveTimer = setTimeout(() => {
    d.saveTimer = 0;
    savePending(key, pendingOf(d.client)).catch((err) => console.warn('huddle: could not keep unsaved document edits', err));
  }, 50);
}
