// The admin dashboard: rooms and participants of the whole server, live
// from the admin event stream (/api/v1/events), with each participant's
// published bitrate over time, tracks and connection quality. It needs a
// token with the roomAdmin grant for room "*", given in the URL's
// fragment (#token=...), which never reaches a server log, or typed in.
import { drawChart, kbps } from './chart.js';

const maxSamples = 60;
const rooms = new Map(); // name -> {name, participants: Map id -> participant}
let token = new URLSearchParams(location.hash.slice(1)).get('token') || sessionStorage.getItem('huddle-admin-token') || '';
let source = null;
let renderQueued = false;

const $ = (id) => document.getElementById(id);

function setStatus(text, cls) {
  const s = $('status');
  s.textContent = text;
  s.className = cls || '';
}

function showError(msg) {
  $('error').hidden = !msg;
  $('error').textContent = msg || '';
}

async function api(path) {
  const res = await fetch(path, { headers: { Authorization: 'Bearer ' + token } });
  const body = await res.json();
  if (!res.ok) throw new Error(`${body.error?.code}: ${body.error?.message}`);
  return body;
}

function roomOf(name) {
  let r = rooms.get(name);
  if (!r) { r = { name, participants: new Map() }; rooms.set(name, r); }
  return r;
}

function addParticipant(room, p) {
  const old = roomOf(room).participants.get(p.id);
  roomOf(room).participants.set(p.id, { ...p, tracks: p.tracks || [], samples: old?.samples || [], sendBps: old?.sendBps || 0, recvBps: old?.recvBps || 0, layers: old?.layers || [] });
}

// load replaces the model with the API's view (at start, and after the
// stream says its history no longer reaches back far enough).
async function load() {
  const { rooms: list } = await api('/api/v1/rooms');
  const fresh = new Map();
  for (const r of list) {
    const full = await api('/api/v1/rooms/' + encodeURIComponent(r.name));
    const room = { name: r.name, participants: new Map() };
    for (const p of full.participants || []) {
      const old = rooms.get(r.name)?.participants.get(p.id);
      room.participants.set(p.id, { ...p, samples: old?.samples || [], sendBps: old?.sendBps || 0, recvBps: old?.recvBps || 0, layers: old?.layers || [] });
    }
    fresh.set(r.name, room);
  }
  rooms.clear();
  for (const [k, v] of fresh) rooms.set(k, v);
  queueRender();
}

function apply(type, ev) {
  const room = rooms.get(ev.room);
  switch (type) {
    case 'room_started': roomOf(ev.room); break;
    case 'room_finished': rooms.delete(ev.room); break;
    case 'participant_joined': addParticipant(ev.room, ev.participant); break;
    case 'participant_left': room?.participants.delete(ev.participant.id); break;
    case 'track_published': {
      const p = room?.participants.get(ev.participant.id);
      if (p && !p.tracks.some((t) => t.id === ev.track.id)) p.tracks.push(ev.track);
      break;
    }
    case 'track_unpublished': {
      const p = room?.participants.get(ev.participant.id);
      if (p) p.tracks = p.tracks.filter((t) => t.id !== ev.track.id);
      break;
    }
    case 'track_muted':
      for (const p of room?.participants.values() || []) {
        for (const t of p.tracks) if (t.id === ev.track.id) t.muted = ev.track.muted;
      }
      break;
    case 'participants_quality':
      for (const s of ev.stats || []) {
        const p = room?.participants.get(s.participantId);
        if (!p) continue;
        p.sendBps = s.sendBps;
        p.recvBps = s.recvBps || 0;
        p.layers = s.layers || [];
        if (s.quality) p.quality = { ...(p.quality || {}), level: s.quality };
        p.samples.push(s.sendBps);
        if (p.samples.length > maxSamples) p.samples.shift();
      }
      break;
  }
  queueRender();
}

const eventTypes = ['room_started', 'room_finished', 'participant_joined', 'participant_left', 'track_published',
  'track_unpublished', 'track_muted', 'document_created', 'document_deleted', 'participants_quality'];

function connect() {
  // The stream opens first, then the snapshot loads: an event between
  // the two is applied twice, which the model tolerates, rather than lost.
  source = new EventSource('/api/v1/events?access_token=' + encodeURIComponent(token));
  source.onopen = () => { setStatus('live', 'live'); showError(''); };
  source.onerror = () => setStatus('reconnecting…', 'down'); // EventSource resumes with Last-Event-ID
  for (const t of eventTypes) {
    source.addEventListener(t, (m) => apply(t, JSON.parse(m.data)));
  }
  source.addEventListener('reset', () => load().catch((e) => showError(e.message)));
  load().catch((e) => {
    showError(e.message);
    source.close();
    $('login').hidden = false;
  });
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

function render() {
  const main = $('rooms');
  main.replaceChildren();
  if (rooms.size === 0) main.append(el('p', 'No rooms.', 'empty'));
  for (const room of [...rooms.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const box = el('section', undefined, 'room');
    box.dataset.room = room.name;
    box.append(el('h2', `${room.name} · ${room.participants.size} participant${room.participants.size === 1 ? '' : 's'}`));
    const table = el('table');
    const head = el('tr');
    for (const h of ['Identity', 'Presence', 'Quality', 'Tracks', 'Sending', 'Receiving', 'Bitrate']) head.append(el('th', h));
    table.append(head);
    for (const p of room.participants.values()) {
      const tr = el('tr');
      tr.dataset.identity = p.identity;
      tr.append(el('td', p.name && p.name !== p.identity ? `${p.name} (${p.identity})` : p.identity));
      tr.append(el('td', p.presence || ''));
      const q = p.quality?.level || '';
      tr.append(el('td', q || '–', q ? 'q-' + q : ''));
      tr.append(el('td', p.tracks.map((t) => `${t.kind} ${t.codec || ''}${t.muted ? ' (muted)' : ''}`).join(', ') || '–'));
      tr.append(el('td', kbps(p.sendBps)));
      tr.append(el('td', kbps(p.recvBps)));
      const cell = el('td');
      const canvas = el('canvas', undefined, 'chart');
      cell.append(canvas);
      tr.append(cell);
      table.append(tr);
      requestAnimationFrame(() => { canvas.dataset.points = drawChart(canvas, p.samples); });
    }
    box.append(table);
    main.append(box);
  }
}

// For tests and the curious: the model as plain data.
window.huddleAdmin = {
  rooms: () => [...rooms.values()].map((r) => ({
    name: r.name,
    participants: [...r.participants.values()].map((p) => ({ identity: p.identity, samples: [...p.samples], tracks: p.tracks.length, quality: p.quality?.level || '', recvBps: p.recvBps })),
  })),
};

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem('huddle-admin-token', token);
  $('login').hidden = true;
  connect();
});

if (token) {
  sessionStorage.setItem('huddle-admin-token', token);
  history.replaceState(null, '', location.pathname); // the token leaves the address bar
  connect();
} else {
  setStatus('no token', 'down');
  $('login').hidden = false;
}
