// Huddle meeting page: the join form, the call view, and the hooks tests use.
// The meeting's own controls, tiles and layout live in call-ui.js.
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
//   call()            the meeting as the page sees it: {micOn, camOn, sharing,
//                     hand, layout, pinned, featured, speakers,
//                     serverTrackIds: {audio, video}, people: [{id, name,
//                     self, hand, micOff, camOff, quality, tracks}]}
//   switchCamera(id)  Promise: switch to another camera mid-call
//   switchMic(id)     Promise: switch to another microphone mid-call
//   switchSpeaker(id) Promise: play the call through another output device
//   mediaDevices()    Promise<{camera, mic, speaker}>: [{id, label}] each
//   publisherStats()  Promise<[{kind, rid, packetsSent, framesEncoded, width,
//                     height, limitation}]>, one per outbound encoding
//   adaptive()        {renderSizes: [{trackId, width, height, hidden, pinned}]
//                     (the last renderSize sent per remote video), paused:
//                     [{trackId, reason}] (videos the server paused for us),
//                     cameraLayers: [{rid, active}] (our camera's simulcast
//                     encodings, as dynacast left them)}
//   endShareFromBrowser() ends the screen share as the browser's own
//                     "Stop sharing" bar does (its tracks fire 'ended')
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
//   docSaveState(id)  '' | 'paused' (the server could not store edits; the
//                     page opens it again and resubmits) | 'failed' (it
//                     stopped trying: docoutage.js)
//   docStatus()       the editor's status line ('Saved', 'Saving paused: …')
//   docPresence(id)   participant ids that have it open
//   remoteCursors(id) [{participant, name, color, anchor, head, rev, seq}] other
//                     people's selections, mapped into our text
//   deliverCursor(msg) handles msg as if it had arrived on `cursors` now
//   docErrors()       [{code, message, doc, id, reqId, at}] docErrors and
//                     local document failures, oldest first
//   threads(id)       [{id, start, end, placed, resolved, comments}] comment
//                     threads, ranges mapped into our text
//   comment(id, start, end, text) Promise<thread id>: a thread on a range
//
// Chat and presence (chat.js, presence.js):
//   chat()            [{id, from, name, text, ts}] messages shown, oldest first
//   sendChat(text)    posts a message (shown once the server stored it)
//   chatNotice()      the composer's notice ('' or "Not sent yet: …")
//   unread()          the unread count (on the Chat control's badge)
//   presenceOf(id)    {state, status, reconnecting, lastSeen} of a participant
//   setStatus(text)   sets our custom status ('' clears it)
//   dropSignaling()   cuts the WebSocket as a network failure would; the
//                     page reconnects (state 'reconnecting', then 'joined')
//   iceUfrags()       {publisher, subscriber}: the ICE ufrags in use; both
//                     change when a resume restarts ICE
//
// The room stays in the URL (?room=&name=) once joined, and the token in
// sessionStorage: a reload joins the same room again by itself.

import { Meeting, ServerError } from './meeting.js';
import { Grid } from './ui.js';
import { DocSession } from './docclient.js';
import { DocsPanel } from './docs-ui.js';
import { saveState } from './docoutage.js';
import { threadsOf, createThread } from './doccomments.js';
import { ChatPanel } from './chat.js';
import { Presence } from './presence.js';
import { CallUI } from './call-ui.js';
import { plainNetworkError } from './errors.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(window.location.search);
const options = {
  token: params.get('token') || '',
  awayMs: (Number(params.get('away')) || 300) * 1000,
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
// Pre-join screen, controls, tile state and layout (call-ui.js).
const callUI = new CallUI({ grid, nomedia: options.nomedia, notice: (text, ms) => showNotice(text, ms) });

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

const sendNow = (type, fields) => !!meeting && meeting.send(type, fields);
const chatPanel = new ChatPanel($('chat-panel'), {
  send: sendNow,
  nameOf: (id) => grid.nameOf(id),
  selfId: () => huddle.participantId || '',
});
callUI.attachChat(chatPanel);
const presence = new Presence(sendNow, options.awayMs);
const REJOIN_KEY = 'huddle.rejoin';

function onMeetingEvent(msg) {
  if (msg.type === 'joined') huddle.participantId = msg.participant.id;
  chatPanel.onEvent(msg);
  presence.onEvent(msg);
}

function onMeetingState(state) {
  setState(state);
  if (state === 'reconnecting') showNotice('Connection lost; reconnecting…');
  else showNotice('Reconnected.', 3000);
}

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
  docSaveState: (id) => saveState(docOf(id)), // '' | 'paused' | 'failed' (docoutage.js)
  docStatus: () => $('doc-status').textContent,
  docPresence: (id) => docSession.presence.get(id) || [],
  remoteCursors: (id) => { const d = docOf(id); return d ? [...d.remoteCursors.values()].map((c) => ({ ...c })) : []; },
  deliverCursor: (msg) => docSession.onCursor(msg),
  docErrors: () => docSession.errors.map((e) => ({ ...e })),
  threads: (id) => threadsOf(docSession, id),
  comment: (id, start, end, text) => createThread(docSession, id, start, end, text).then((t) => t.id),
  chat: () => chatPanel.messages.map((m) => ({ ...m })),
  sendChat: (text) => chatPanel.post(text),
  chatNotice: () => chatPanel.notice.textContent,
  unread: () => chatPanel.unread,
  presenceOf: (id) => { const p = presence.people.get(id); return p ? { ...p } : null; },
  setStatus: (text) => presence.set(presence.state, text),
  dropSignaling: () => { if (meeting) meeting.dropSignaling(); },
  call: () => callUI.state(),
  switchCamera: (deviceId) => callUI.switchDevice('camera', deviceId),
  switchMic: (deviceId) => callUI.switchDevice('mic', deviceId),
  switchSpeaker: (deviceId) => callUI.switchDevice('speaker', deviceId),
  mediaDevices: () => callUI.media.devices(),
  // As when the person clicks the browser's own "Stop sharing".
  endShareFromBrowser: () => {
    const s = callUI.share.stream;
    if (s) for (const t of s.getTracks()) t.dispatchEvent(new Event('ended'));
    return !!s;
  },
  publisherStats: async () => {
    if (!meeting || !meeting.publisher) return [];
    const r = await meeting.publisher.pc.getStats();
    return [...r.values()].filter((s) => s.type === 'outbound-rtp').map((s) => ({
      kind: s.kind, rid: s.rid || '', packetsSent: s.packetsSent || 0, framesEncoded: s.framesEncoded || 0,
      width: s.frameWidth || 0, height: s.frameHeight || 0, limitation: s.qualityLimitationReason || '',
    }));
  },
  iceUfrags: () => (meeting ? meeting.iceUfrags() : null),
  adaptive: () => (meeting ? meeting.adaptiveState() : null),
};
window.huddle = huddle;

function setState(state) {
  huddle.state = state;
  document.body.dataset.state = state;
  const inCall = state === 'joined' || state === 'reconnecting';
  form.hidden = inCall;
  $('call').hidden = !inCall;
  leaveButton.hidden = !inCall;
  roomLabel.hidden = !inCall;
  joinButton.disabled = state === 'joining';
  joinButton.textContent = state === 'joining' ? 'Joining…' : 'Join';
  if (state === 'reconnecting') return;
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
  return plainNetworkError(text.charAt(0).toUpperCase() + text.slice(1));
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

async function join(name, room, savedToken = '') {
  setState('joining');
  showError('');
  showNotice('');
  let stream = null;
  try {
    const token = options.token || savedToken || await devToken(name, room);
    const { media, warning } = await callUI.mediaForJoin();
    meeting = new Meeting({
      token,
      stream,
      localMedia: media,
      onRoomEvent: (msg) => callUI.onRoomEvent(msg),
      sourceOf: (participantId, trackId) => callUI.room.sourceOf(participantId, trackId),
      relay: options.relay,
      grid,
      onError: onMeetingError,
      onNotice: (text) => showNotice(text),
      onChannels: attachDocs,
      onState: onMeetingState,
      onEvent: onMeetingEvent,
      pinnedTile: () => callUI.layout.pinned,
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
    // Keep the room in the URL and the token for this tab: a reload
    // joins again by itself.
    const here = new URL(window.location.href);
    here.searchParams.set('room', joined.room);
    if (name) here.searchParams.set('name', name);
    window.history.replaceState(null, '', here.href);
    try { sessionStorage.setItem(REJOIN_KEY, JSON.stringify({ room: joined.room, name, token })); } catch { /* storage off */ }
    presence.start();
    setState('joined');
    callUI.joined(meeting);
    huddle.participantId = joined.participant.id;
    huddle.room = joined.room;
    if (warning) showNotice(warning);
  } catch (err) {
    if (stream) for (const t of stream.getTracks()) t.stop();
    meeting = null;
    callUI.left();
    setState('error');
    showError(explain(err));
    callUI.preview();
  }
}

function onMeetingError(err, fatal) {
  if (!fatal && err instanceof ServerError && err.ref === 'chat' && chatPanel.refused(err)) return;
  const text = explain(err);
  huddle.lastError = text;
  if (!fatal) {
    // The call goes on; say what happened for a while.
    showNotice(text, 8000);
    return;
  }
  meeting = null;
  docSession.detach();
  presence.stop();
  callUI.left();
  setState('error');
  showError(text);
  callUI.preview();
}

function leave() {
  try { sessionStorage.removeItem(REJOIN_KEY); } catch { /* storage off */ }
  presence.stop();
  if (meeting) meeting.leave();
  docSession.detach();
  meeting = null;
  callUI.left();
  document.title = 'Huddle';
  setState('left');
  callUI.preview();
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
callUI.preview();

// A reload of a page that was in a call joins the same room again.
(() => {
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(REJOIN_KEY) || 'null'); } catch { /* none */ }
  if (saved && saved.room && saved.room === params.get('room') && saved.token) join(saved.name || '', saved.room, saved.token);
})();
