// When the server could not store a document's edits (cluster mode: its
// store, Redis, is unreachable, or the room moved to another node), it
// acknowledges nothing, drops its copy of the document and says so: a
// docError with code `unavailable`, for the refused edit (with its `id`)
// and for the document's stream (with only `doc`). Nothing unacknowledged
// was saved, so nothing is rolled back: the edits stay in the editor (and
// in IndexedDB, docstore.js), the document stops sending, and it is opened
// again from its revision after a backoff with jitter. The catch-up says
// whether the in-flight op landed (it comes back with its id); what is
// still unacknowledged goes again with the same id, which the server
// applies at most once. The Go SDK does the same (sdk/docoutage.go).
//
// After REOPEN_TRIES failed opens in a row the page stops trying and says
// so; opening the document again (or a reconnect) starts over.

export const REOPEN_TRIES = 10;
export const FIRST_WAIT_MS = 250;
export const MAX_WAIT_MS = 4000;

/**
 * Whether a docError code means the server's copy is gone with nothing
 * saved (`unavailable`), or that the server does not have the document
 * open for us (`not_open`: an edit that arrived after the stream ended).
 */
export function storeTrouble(code) {
  return code === 'unavailable' || code === 'not_open';
}

/**
 * Pauses saving d and opens it again later. False when d never had its
 * text (nothing to keep: the caller's usual handling applies). A message
 * that arrives while an open is out concerns the old stream (the server
 * answers an open before anything of its new stream): that open's answer
 * decides. One that arrives while a retry waits adds nothing.
 */
export function pauseSaving(session, d, err) {
  if (!d || !d.client) return false;
  if (d.saveFailed || d.opening || d.retryTimer) return true;
  d.opened = false; // nothing is sent until the document is open again
  const o = d.outage || (d.outage = { tries: 0, last: null });
  o.last = err;
  if (o.tries >= REOPEN_TRIES) {
    d.saveFailed = true;
    for (const w of d.waiters.splice(0)) w.reject(err);
    console.warn(`huddle: document ${d.id}: the server still could not store edits after ${o.tries} tries; stopped trying`, err);
    session.emit('status');
    return true;
  }
  let wait = Math.min(FIRST_WAIT_MS * 2 ** o.tries, MAX_WAIT_MS);
  wait = wait / 2 + Math.random() * (wait / 2);
  o.tries++;
  console.info(`huddle: document ${d.id}: the server could not store edits (${err.message}); opening it again in ${Math.round(wait)} ms (try ${o.tries})`);
  d.retryTimer = setTimeout(() => {
    d.retryTimer = 0;
    if (session.open.get(d.id) === d && session.connected && !d.opening) session.sendOpen(d);
  }, wait);
  session.emit('status');
  return true;
}

/** The server saved something of ours, or there is nothing left to save. */
export function savingResumed(d) {
  d.outage = null;
}

/** Starts over (the person opened the document again, or a reconnect). */
export function resetOutage(d) {
  clearTimeout(d.retryTimer);
  d.retryTimer = 0;
  d.saveFailed = false;
  d.outage = null;
}

/** '' normally, 'paused' while retrying, 'failed' once it stopped trying. */
export function saveState(d) {
  if (!d) return '';
  if (d.saveFailed) return 'failed';
  return d.outage ? 'paused' : '';
}
