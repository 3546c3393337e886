// A simulation of the document protocol in the page, for ot_js_test.go: a
// server (one log, transforms each submit over what its base missed, as
// collab does) and several DocClients that edit at random while messages
// are delivered in random interleavings (per client in order, as on the
// collab channel). Everyone must converge on the server's text.

import * as ot from '/ot.js';
import { DocClient } from '/docclient.js';

const alphabet = [...'abc xyz\né€中😀🎉𝄞'];

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function randEdit(r, text) {
  const n = ot.cpLen(text);
  const pos = Math.floor(r() * (n + 1));
  const del = r() < 0.3 ? Math.min(n - pos, Math.floor(r() * 4)) : 0;
  let ins = '';
  const k = r() < 0.8 ? 1 + Math.floor(r() * 3) : 0;
  for (let i = 0; i < k; i++) ins += alphabet[Math.floor(r() * alphabet.length)];
  const op = [];
  if (pos) op.push(pos);
  if (ins) op.push(ins);
  if (del) op.push({ d: del });
  return ot.normalize(op);
}

export function simulate(seed, nClients = 3, steps = 300) {
  const r = rng(seed);
  const server = { text: 'start 😀 text', log: [], seen: new Set() };
  const clients = [];
  for (let i = 0; i < nClients; i++) {
    clients.push({ c: new DocClient(`c${i}-`, 0, server.text), inbox: [], outbox: [], cursor: { anchor: 0, head: 0 } });
  }
  const serverReceive = (sub) => {
    if (server.seen.has(sub.id)) return; // de-duplicated
    let op = sub.op;
    for (const e of server.log.slice(sub.rev)) op = ot.transform(op, e.op, ot.RIGHT);
    server.text = ot.apply(server.text, op);
    server.log.push({ op, id: sub.id });
    server.seen.add(sub.id);
    const rev = server.log.length;
    for (const cl of clients) cl.inbox.push({ rev, id: sub.id, op });
  };
  for (let step = 0; step < steps; step++) {
    const cl = clients[Math.floor(r() * clients.length)];
    const what = r();
    if (what < 0.4) {
      const op = randEdit(r, cl.c.text);
      const before = cl.c.text;
      const sub = cl.c.applyLocal(op);
      if (cl.c.text !== ot.apply(before, op)) throw new Error('local apply mismatch');
      if (sub) cl.outbox.push({ ...sub });
    } else if (what < 0.7) {
      if (cl.outbox.length) serverReceive(cl.outbox.shift());
    } else if (cl.inbox.length) {
      const m = cl.inbox.shift();
      const { send } = cl.c.receive(m.rev, m.id, m.op);
      if (send) cl.outbox.push({ ...send });
    }
  }
  // Drain everything.
  for (let guard = 0; guard < 100000; guard++) {
    let moved = false;
    for (const cl of clients) {
      if (cl.outbox.length) { serverReceive(cl.outbox.shift()); moved = true; }
      if (cl.inbox.length) {
        const m = cl.inbox.shift();
        const { send } = cl.c.receive(m.rev, m.id, m.op);
        if (send) cl.outbox.push({ ...send });
        moved = true;
      }
    }
    if (!moved) break;
  }
  return {
    server: server.text,
    revs: server.log.length,
    clients: clients.map((cl) => ({ text: cl.c.text, rev: cl.c.rev, state: cl.c.state })),
  };
}

// A reconnect: the client's in-flight op may or may not have reached the
// server; it catches up from its revision and resubmits the same id.
export function reconnect(applied) {
  const server = { text: 'hello', log: [], seen: new Set() };
  const serverReceive = (sub) => {
    if (server.seen.has(sub.id)) return 'duplicate';
    let op = sub.op;
    for (const e of server.log.slice(sub.rev)) op = ot.transform(op, e.op, ot.RIGHT);
    server.text = ot.apply(server.text, op);
    server.log.push({ op, id: sub.id });
    server.seen.add(sub.id);
    return 'applied';
  };
  const a = new DocClient('a-', 0, 'hello');
  const sub = { ...a.applyLocal(['X']) };
  // Someone else edits meanwhile.
  serverReceive({ id: 'b-1', rev: 0, op: [5, '!'] });
  if (applied) serverReceive(sub);
  serverReceive({ id: 'b-2', rev: server.log.length, op: ['>'] });
  // The connection drops; catch up from a.rev.
  const from = a.rev;
  for (let i = from; i < server.log.length; i++) {
    const e = server.log[i];
    a.receive(i + 1, e.id, e.op);
  }
  const again = a.resubmit();
  const result = again ? serverReceive({ ...again }) : 'nothing';
  if (again) {
    const i = server.log.length - 1;
    if (result === 'applied') a.receive(i + 1, server.log[i].id, server.log[i].op);
  }
  return { server: server.text, client: a.text, state: a.state, result };
}
