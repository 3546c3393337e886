// Huddle meeting page: the join form, the call view, and the hooks tests use.
//
// Query options:
//   ?room=R&name=N  prefill the form
//   ?token=JWT      join with this access token instead of asking the dev
//                   endpoint (/api/dev/token, dev mode on loopback only)
//   ?relay=1        iceTransportPolicy 'relay' on both PeerConnections (TURN tests)
//   ?nomedia=1      join without camera and microphone (data channels still open)
//
// Test hooks, on window.huddle (read-only for tests; the page never reads them):
//   state             'idle' | 'joining' | 'joined' | 'error' | 'left'
//   participantId     our participant id once joined, else null
//   room              the room joined, else null
//   lastError         the text of the last error shown or logged, else null
//   remoteVideoStats() Promise<[{participantId, name, trackId, framesDecoded,
//                     width, height}]>, one entry per remote video track, from
//                     the subscriber PC's inbound-rtp stats
//   channels()        {collab, cursors}, each {state, opened}: the publisher
//                     data channel's readyState, and whether it ever was open
//   iceInfo()         Promise<{publisher, subscriber}>, each {state, local,
//                     remote}: connectionState and the selected pair's
//                     candidate types ('host', 'srflx', 'relay', ...)
//
// Shared documents (positions are Unicode code points, as on the wire):
//   docsConnected()   true while the collab channel is open and listed
//   docs()            [{id, title, readOnly, editors}] the room's documents
//   createDoc(title, text?) Promise<id>: docCreate (does not open it)
//   openDoc(id)       Promise: shows the document in the editor, resolves
//                     once its text is here
//   docText(id)       the local text of an open document (with unacked edits), else null
//   docRev(id)        the last server revision seen, else null
//   docState(id)      'synchronized' | 'awaiting confirm' | 'awaiting with
//                     buffer' (the OT client state), null if not open
//   docReadOnly(id)   whether the server opened it read-only for us
//   docPresence(id)   participant ids that have it open
//   remoteCursors(id) [{participant, name, color, anchor, head}] other
//                     people's selections, mapped into our text
//   docErrors()       [{code, message, doc, id, reqId, at}] docErrors and
//                     local document failures, oldest first
//   threads(id)       [{id, start, end, placed, resolved, comments}] comment
//                     threads, ranges mapped into our text
//   comment(id, start, end, text) Promise<thread id>: a thread on a range

import { Meeting, ServerError } from './meeting.js';
import { Grid } from './ui.js';
import { getLocalMedia } from './media.js';
import { DocSession } from './docclient.js';
import { DocsPanel } from './docs-ui.js';
import { threadsOf, createThread } from './doccomments.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(window.location.search);
const options = {
  token: params.get('token') || '',
  relay: params.get('relay') === '1',
  nomedia: params.get('nomedia') === '1',
};

const form = $('join-form');
const nameInput = $('name');
const roomInput = $('room');
const joinButton = $('join');
const errorBox = $('error');
const noticeBox = $('notice');
const leaveButton = $('leave');
const roomLabel = $('room-label');
const grid = new Grid($('grid'), $('tile-template'));

let meeting = null;

// Documents outlive one Meeting: joining the same room again re-opens them
// from their revisions and resubmits unacknowledged edits.
const docSession = new DocSession({
  nameOf: (id) => grid.nameOf(id),
  selfId: () => (meeting && meeting.self ? meeting.self.id : ''),
});
const docsPanel = new DocsPanel(docSession, (id) => grid.nameOf(id));
let docsRoom = null;

function attachDocs(collab, cursors, joined) {
  if (docsRoom !== joined.room) docSession.reset();
  docsRoom = joined.room;
  // Unacknowledged edits are kept per room and identity (docstore.js).
  docSession.storeKey = `${joined.room}|${joined.participant.identity || joined.participant.name}`;
  // Without editDocs the server refuses changes; do not offer them.
  const g = joined.grants;
  docsPanel.setCanEdit(g ? !!g.editDocs : true, !!(g && g.roomAdmin));
  docSession.attach(collab, cursors);
}

const docOf = (id) => docSession.doc(id);

const huddle = {
  state: 'idle',
  participantId: null,
  room: null,
  lastError: null,
  remoteVideoStats: () => (meeting ? meeting.remoteVideoStats() : Promise.resolve([])),
  iceInfo: () => (meeting ? meeting.iceInfo() : Promise.resolve(null)),
  channels: () => {
    const p = meeting && meeting.publisher;
    if (!p) return null;
    const info = (ch) => ({ state: ch.readyState, opened: p.channelsOpened.has(ch.label) });
    return { collab: info(p.collab), cursors: info(p.cursors) };
  },
  docsConnected: () => docSession.connected,
  docs: () => docSession.docs.map((d) => ({ id: d.id, title: d.title, readOnly: !!d.readOnly, editors: d.editors || [] })),
  createDoc: (title, text) => docSession.create(title, text),
  openDoc: (id) => docsPanel.open(id).then(() => true),
  docText: (id) => { const d = docOf(id); return d && d.client ? d.client.text : null; },
  docRev: (id) => { const d = docOf(id); return d && d.client ? d.client.rev : null; },
  docState: (id) => { const d = docOf(id); return d && d.client && d.opened ? d.client.state : null; },
  docReadOnly: (id) => { const d = docOf(id); return d ? d.readOnly : null; },
  docPresence: (id) => docSession.presence.get(id) || [],
  remoteCursors: (id) => { const d = docOf(id); return d ? [...d.remoteCursors.values()].map((c) => ({ ...c })) : []; },
  docErrors: () => docSession.errors.map((e) => ({ ...e })),
  threads: (id) => threadsOf(docSession, id),
  comment: (id, start, end, text) => createThread(docSession, id, start, end, text).then((t) => t.id),
};
window.huddle = huddle;

function setState(state) {
  huddle.state = state;
  document.body.dataset.state = state;
  const inCall = state === 'joined';
  form.hidden = inCall;
  $('call').hidden = !inCall;
  leaveButton.hidden = !inCall;
  roomLabel.hidden = !inCall;
  joinButton.disabled = state === 'joining';
  joinButton.textContent = state === 'joining' ? 'Joining…' : 'Join';
  if (!inCall) {
    huddle.participantId = null;
    huddle.room = null;
  }
}

function showError(text) {
  errorBox.textContent = text || '';
  errorBox.hidden = !text;
  if (text) huddle.lastError = text;
}

let noticeTimer = 0;
function showNotice(text, ms = 0) {
  clearTimeout(noticeTimer);
  noticeBox.textContent = text || '';
  noticeBox.hidden = !text;
  if (text && ms) noticeTimer = setTimeout(() => showNotice(''), ms);
}

/** Words a person can act on, for errors the server names by code. */
function explain(err) {
  if (err instanceof ServerError) {
    switch (err.code) {
      case 'bad_token': return `The server refused the access token: ${err.message}`;
      case 'bad_version': return `This page is out of date for the server (${err.message}). Reload the page.`;
      case 'forbidden': return `Not allowed: ${err.message}`;
      default: return `Server error (${err.code}): ${err.message}`;
    }
  }
  const text = err.message || String(err);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Asks the dev endpoint for a token. Only dev-mode servers answer, and only to loopback. */
async function devToken(name, room) {
  let res;
  try {
    res = await fetch(`/api/dev/token?${new URLSearchParams({ name, room })}`, { cache: 'no-store' });
  } catch (err) {
    throw new Error(`Could not reach the server for a token: ${err.message}`);
  }
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch { /* not JSON; use the text */ }
  if (!res.ok) {
    const why = (body && (body.message || body.error)) || text.trim() || res.statusText;
    const hint = res.status === 403 || res.status === 404
      ? ' This server only hands out tokens in dev mode to this machine; ask for an invitation link.'
      : '';
    throw new Error(`Could not get an access token (HTTP ${res.status}): ${why}.${hint}`);
  }
  if (!body || typeof body.token !== 'string' || !body.token) {
    throw new Error('The token endpoint answered without a token.');
  }
  return body.token;
}

/** Reads name and room from a JWT's payload, to prefill the form. Not a verification. */
function tokenClaims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0)));
    return JSON.parse(json);
  } catch {
    return {};
  }
}

async function join(name, room) {
  setState('joining');
  showError('');
  showNotice('');
  let stream = null;
  try {
    const token = options.token || await devToken(name, room);
    let warning = null;
    if (!options.nomedia) ({ stream, warning } = await getLocalMedia());
    meeting = new Meeting({
      token,
      stream,
      relay: options.relay,
      grid,
      onError: onMeetingError,
      onNotice: (text) => showNotice(text),
      onChannels: attachDocs,
    });
    const joined = await meeting.join();
    roomLabel.textContent = joined.room;
    // The invitation carries the room, not our token or name: each person
    // gets their own token.
    const invite = new URL(window.location.pathname, window.location.origin);
    invite.searchParams.set('room', joined.room);
    $('invite-link').href = invite.href;
    $('invite-link').textContent = invite.href;
    document.title = `${joined.room} · Huddle`;
    setState('joined');
    huddle.participantId = joined.participant.id;
    huddle.room = joined.room;
    if (warning) showNotice(warning);
  } catch (err) {
    if (stream) for (const t of stream.getTracks()) t.stop();
    meeting = null;
    setState('error');
    showError(explain(err));
  }
}

function onMeetingError(err, fatal) {
  const text = explain(err);
  huddle.lastError = text;
  if (!fatal) {
    // The call goes on; say what happened for a while.
    showNotice(text, 8000);
    return;
  }
  meeting = null;
  docSession.detach();
  setState('error');
  showError(text);
}

function leave() {
  if (meeting) meeting.leave();
  docSession.detach();
  meeting = null;
  document.title = 'Huddle';
  setState('left');
  showNotice('');
  showError('');
}

// Prefill: from the token's claims when there is one (and lock the fields:
// the token decides), else from ?name= and ?room=.
if (options.token) {
  const claims = tokenClaims(options.token);
  nameInput.value = claims.name || claims.sub || '';
  roomInput.value = claims.room || '';
  for (const input of [nameInput, roomInput]) {
    input.readOnly = true;
    // An empty locked field looks like a form to fill in; the server will
    // say what is wrong with the token if it is unreadable.
    const label = form.querySelector(`label[for="${input.id}"]`);
    input.hidden = label.hidden = !input.value;
  }
  $('token-note').hidden = false;
} else {
  nameInput.value = params.get('name') || '';
  roomInput.value = params.get('room') || '';
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (huddle.state === 'joining' || huddle.state === 'joined') return;
  const name = nameInput.value.trim();
  const room = roomInput.value.trim();
  if (!options.token && (!name || !room)) {
    showError(!name ? 'Type your name.' : 'Type a room name.');
    (!name ? nameInput : roomInput).focus();
    return;
  }
  join(name, room);
});

leaveButton.addEventListener('click', leave);

// Tell the room at once when the tab closes, rather than after the server's
// 30-second silence timeout.
window.addEventListener('pagehide', () => { if (meeting) meeting.leave(); });

setState('idle');
(nameInput.value ? roomInput : nameInput).focus();
