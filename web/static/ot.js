// Operational transformation for plain text, wire-compatible with the Go
// engine in collab/ot (docs/COLLAB.md). An op is a JSON array walking the
// document from its start:
//
//   positive integer n  retain n code points
//   non-empty string s  insert s
//   {d: n}              delete n code points
//   {i: s, a: n, g: m, s: t, h: 1}
//                       insert s with its tie-break context (a, g, t >= 0,
//                       h 0 or 1, each optional): see transform
//
// Every position and count is in Unicode CODE POINTS, as on the wire. The
// browser's strings are UTF-16: a code point outside the BMP (an emoji) is
// two string units. cpLen/unitOffset/cpIndex convert at the edges.
//
// Ops are kept canonical like Go's: adjacent parts merged, an insert before
// an adjacent delete, no trailing retain. Transform orders concurrent
// inserts at one position by their context, then for the LEFT op, exactly
// as Go's ot.Transform does.

export const LEFT = 0;
export const RIGHT = 1;

const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;

/** Number of code points in s (a lone surrogate counts as one). */
export function cpLen(s) {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if (isHigh(s.charCodeAt(i)) && isLow(s.charCodeAt(i + 1))) { n--; i++; }
  }
  return n;
}

/**
 * The UTF-16 offset of code point cp in s, counting from the unit offset
 * `from` (which must be on a code point boundary). Past the end: s.length.
 */
export function unitOffset(s, cp, from = 0) {
  let i = from;
  while (cp > 0 && i < s.length) {
    if (isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i += 2;
    else i++;
    cp--;
  }
  return i;
}

/**
 * The code point index of UTF-16 offset unit in s. An offset between the
 * halves of a surrogate pair is rounded up to after the pair.
 */
export function cpIndex(s, unit) {
  let n = 0;
  let i = 0;
  while (i < unit && i < s.length) {
    if (isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i += 2;
    else i++;
    n++;
  }
  return n;
}

/** Kind and length of one wire component; throws on a malformed one. */
function comp(c) {
  if (typeof c === 'number') {
    if (!Number.isInteger(c) || c <= 0) throw new OpError(`retain of ${c} code points`);
    return { k: 'r', n: c };
  }
  if (typeof c === 'string') {
    if (c === '') throw new OpError('empty insert');
    return { k: 'i', n: cpLen(c), s: c, a: 0, g: 0, t: 0, h: false };
  }
  if (c && typeof c === 'object' && Object.keys(c).length === 1 && Number.isInteger(c.d) && c.d > 0) {
    return { k: 'd', n: c.d };
  }
  if (c && typeof c === 'object' && typeof c.i === 'string' && c.i !== '' &&
      Object.keys(c).every((k) => k === 'i' || ((k === 'a' || k === 'g') && isCount(c[k])) || (k === 's' && isSeen(c[k])) || (k === 'h' && (c.h === 0 || c.h === 1)))) {
    return { k: 'i', n: cpLen(c.i), s: c.i, a: c.a || 0, g: c.g || 0, t: c.s || 0, h: c.h === 1 };
  }
  throw new OpError(`bad component ${JSON.stringify(c)}`);
}

// The largest tie-break counter the wire accepts; transform saturates at
// it exactly as Go does (Go's int32 would otherwise wrap where a JS number
// keeps growing, and the two would break a tie differently).
const MAX_CONTEXT = 0x7fffffff;
const isCount = (v) => Number.isInteger(v) && v >= 0 && v <= MAX_CONTEXT;
// An insert's "s" (Go's Seen: revisions its author had seen when typing
// it) is exact up to Number.MAX_SAFE_INTEGER, and Go refuses more too.
const isSeen = (v) => Number.isSafeInteger(v) && v >= 0;

export class OpError extends Error {
  constructor(msg) { super(`invalid op: ${msg}`); this.name = 'OpError'; }
}

/** Builds a canonical op, like Go's in-place builders. */
class Builder {
  constructor() { this.parts = []; } // {k, n, s, a, g, t, h}; t is the wire's "s"
  push(c) {
    if (c.n <= 0) return this;
    const p = this.parts;
    const last = p[p.length - 1];
    if (c.k === 'i') {
      if (last && last.k === 'd') {
        p.pop();
        this.push(c);
        p.push(last);
        return this;
      }
      if (last && last.k === 'i') {
        last.s += c.s;
        last.n += c.n;
        return this;
      }
      // A new insert keeps its context; one joined to a run above takes
      // the run's (each later character was typed after the one before).
      p.push({ k: 'i', n: c.n, s: c.s, a: c.a || 0, g: c.g || 0, t: c.t || 0, h: !!c.h });
      return this;
    }
    if (last && last.k === c.k) last.n += c.n;
    else p.push({ k: c.k, n: c.n });
    return this;
  }
  retain(n) { return this.push({ k: 'r', n }); }
  insert(s) { return s ? this.push({ k: 'i', n: cpLen(s), s }) : this; }
  del(n) { return this.push({ k: 'd', n }); }
  /** The wire form, trailing retain dropped. */
  op() {
    const p = this.parts;
    if (p.length && p[p.length - 1].k === 'r') p.pop();
    return p.map((c) => {
      if (c.k === 'r') return c.n;
      if (c.k === 'd') return { d: c.n };
      if (!c.a && !c.g && !c.t && !c.h) return c.s;
      const o = { i: c.s };
      if (c.a) o.a = c.a;
      if (c.g) o.g = c.g;
      if (c.t) o.s = c.t;
      if (c.h) o.h = 1;
      return o;
    });
  }
}

/** Walks an op piece by piece; past its end an endless retain. */
class Iter {
  constructor(op) {
    this.c = op.map(comp);
    this.i = 0;
    this.off = 0; // code points of c[i] taken
    this.offU = 0; // string units of c[i].s taken
  }
  done() { return this.i >= this.c.length; }
  kind() { return this.done() ? 'r' : this.c[this.i].k; }
  remaining() { return this.done() ? Infinity : this.c[this.i].n - this.off; }
  peek() { return this.c[this.i]; }
  take(n) {
    if (this.done()) return { k: 'r', n };
    const c = this.c[this.i];
    const left = c.n - this.off;
    // Only an insert's first piece keeps its tie-break context.
    const first = this.off === 0;
    if (n < 0 || n >= left) {
      const out = { k: c.k, n: left };
      if (c.k === 'i') {
        out.s = c.s.slice(this.offU);
        out.a = first ? c.a : 0;
        out.g = first ? c.g : 0;
        out.t = first ? c.t : 0;
        out.h = first ? c.h : false;
      }
      this.i++;
      this.off = 0;
      this.offU = 0;
      return out;
    }
    const out = { k: c.k, n };
    if (c.k === 'i') {
      out.a = first ? c.a : 0;
      out.g = first ? c.g : 0;
      out.t = first ? c.t : 0;
      out.h = first ? c.h : false;
      const end = unitOffset(c.s, n, this.offU);
      out.s = c.s.slice(this.offU, end);
      this.offU = end;
    }
    this.off += n;
    return out;
  }
}

/** The canonical form of op; throws OpError on a malformed one. */
export function normalize(op) {
  if (!Array.isArray(op)) throw new OpError('not an array');
  const b = new Builder();
  for (const c of op) b.push(comp(c));
  return b.op();
}

/** Checks that op is well formed (not that it fits a document). */
export function validate(op) { normalize(op); }

export function isNoop(op) {
  return op.every((c) => typeof c === 'number');
}

/** Code points op walks over (retains + deletes). */
export function baseLen(op) {
  let n = 0;
  for (const c of op) {
    if (typeof c === 'number') n += c;
    else if (typeof c === 'object' && c.d !== undefined) n += c.d;
  }
  return n;
}

/**
 * Applies op to text. Throws OpError (changing nothing) if op is malformed
 * or walks past the end. Costs O(the op's span), not O(document) in
 * code point counting; the string copy is V8's.
 */
export function apply(text, op) {
  const parts = [];
  let u = 0; // unit offset in text
  for (const raw of op) {
    const c = comp(raw);
    if (c.k === 'i') {
      parts.push(c.s);
      continue;
    }
    const end = unitOffset(text, c.n, u);
    if (end === text.length && cpLen(text.slice(u)) < c.n) {
      throw new OpError(`op spans past the end of a document of ${cpLen(text)} code points`);
    }
    if (c.k === 'r') parts.push(text.slice(u, end));
    u = end;
  }
  parts.push(text.slice(u));
  return parts.join('');
}

/** One op with the effect of a then b. */
export function compose(a, b) {
  const out = new Builder();
  const ia = new Iter(a);
  const ib = new Iter(b);
  while (!ia.done() || !ib.done()) {
    if (ia.kind() === 'd') out.push(ia.take(-1));
    else if (ib.kind() === 'i') out.push(ib.take(-1));
    else if (ib.done()) out.push(ia.take(-1));
    else if (ia.done()) out.push(ib.take(-1));
    else {
      const n = Math.min(ia.remaining(), ib.remaining());
      const ca = ia.take(n);
      const cb = ib.take(n);
      if (cb.k === 'r') out.push(ca);
      else if (ca.k === 'r') out.del(n);
      // a inserted, b deleted it: nothing remains.
    }
  }
  return out.op();
}

/**
 * op (canonical) with each insert stamped with when it was typed: the wire's
 * "s" = 1 + rev, the revision its author had seen, and "h": 1 when held
 * (typed while an earlier edit was unacknowledged): Go's client.stampSeen.
 * A buffered edit reaches the server a round trip after it was typed; the
 * stamp lets a tie go by typing order, not arrival. Stamps already there stay.
 */
export function stampSeen(op, rev, held = false) {
  const stamp = (c) => (held ? { ...c, s: rev + 1, h: 1 } : { ...c, s: rev + 1 });
  return op.map((c) => {
    if (typeof c === 'string') return stamp({ i: c });
    if (c && typeof c === 'object' && typeof c.i === 'string' && !c.s) return stamp(c);
    return c;
  });
}

/** Whether insert a goes before the concurrent insert b at one position. */
function insertFirst(a, b, side) {
  if (a.g !== b.g) return a.g < b.g;
  const bothHeld = a.h && b.h;
  if (a.a !== b.a && !bothHeld) return a.a < b.a;
  if (a.t && b.t) {
    if (a.t !== b.t) return a.t < b.t;
    if (a.h !== b.h) return a.h;
  }
  if (a.a !== b.a) return a.a < b.a;
  return side === LEFT;
}

/**
 * a rebased over concurrent b (both made against the same text). Inserts
 * at one position: less text concurrently deleted right before (g) goes
 * first, then (unless both are held) less concurrent text moved past (a),
 * then, when both are stamped, the one typed having seen fewer revisions
 * (t, the wire's "s"), then the held one (h), then (both held) less text
 * moved past, then a when side is LEFT: Go's ot.Transform, exactly. The
 * insert that goes second records what it passed, as Go does.
 */
export function transform(a, b, side) {
  const out = new Builder();
  const ia = new Iter(a);
  const ib = new Iter(b);
  let after = 0;
  let less = 0;
  let gone = 0;
  while (!ia.done()) {
    if (ia.kind() === 'i' && (ib.kind() !== 'i' || insertFirst(ia.peek(), ib.peek(), side))) {
      const c = ia.take(-1);
      c.a = Math.min(MAX_CONTEXT, c.a + after);
      c.g = Math.min(MAX_CONTEXT, Math.max(0, c.g - less) + gone);
      after = 0;
      less = 0;
      gone = 0;
      out.push(c);
    } else if (ib.kind() === 'i') {
      const cb = ib.take(-1);
      out.retain(cb.n);
      if (ia.kind() === 'i') {
        after += cb.n;
        less = cb.g;
      }
      gone = 0;
    } else {
      const n = Math.min(ia.remaining(), ib.remaining());
      const ca = ia.take(n);
      const cb = ib.take(n);
      if (cb.k === 'd') {
        gone += n;
        continue;
      }
      gone = 0;
      out.push(ca);
    }
  }
  return out.op();
}

/**
 * Moves a code point position through op. own: the cursor's owner made op
 * (an insert at the cursor pushes it along); someone else's insert at the
 * cursor leaves it in front.
 */
export function transformPosition(pos, op, own) {
  let newPos = pos;
  let old = 0;
  for (const raw of op) {
    if (old > pos) break;
    const c = comp(raw);
    if (c.k === 'r') old += c.n;
    else if (c.k === 'i') {
      if (old < pos || own) newPos += c.n;
    } else {
      if (old < pos) newPos -= Math.min(c.n, pos - old);
      old += c.n;
    }
  }
  return newPos;
}

/** Moves both ends of a selection {anchor, head} through op. */
export function transformSelection(sel, op, own) {
  return { anchor: transformPosition(sel.anchor, op, own), head: transformPosition(sel.head, op, own) };
}

/**
 * The op turning `from` into `to`: common prefix and suffix kept, the middle
 * replaced. Never cuts a surrogate pair. This is how the editor turns an
 * `input` event (old value, new value) into an op.
 */
export function diff(from, to) {
  let p = 0;
  const max = Math.min(from.length, to.length);
  while (p < max && from.charCodeAt(p) === to.charCodeAt(p)) p++;
  // Do not end the prefix between the halves of a pair.
  if (p > 0 && isHigh(from.charCodeAt(p - 1))) p--;
  let s = 0;
  const maxS = max - p;
  while (s < maxS && from.charCodeAt(from.length - 1 - s) === to.charCodeAt(to.length - 1 - s)) s++;
  if (s > 0 && isLow(from.charCodeAt(from.length - s))) s--;
  const b = new Builder();
  b.retain(cpLen(from.slice(0, p)));
  b.insert(to.slice(p, to.length - s));
  b.del(cpLen(from.slice(p, from.length - s)));
  return b.op();
}

/** The code point selection {anchor, head} of a textarea or input. */
export function selectionOf(el) {
  const v = el.value;
  const start = cpIndex(v, el.selectionStart);
  const end = cpIndex(v, el.selectionEnd);
  return el.selectionDirection === 'backward' ? { anchor: end, head: start } : { anchor: start, head: end };
}
