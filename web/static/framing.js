// Chunk framing for data channel messages (docs/PROTOCOL.md "Framing",
// signaling/protocol/framing.go). A message longer than MAX_FRAME bytes of
// UTF-8 travels as frames
//
//   #<id>:<index>:<last>:<data>
//
// cut at code point boundaries (never between the halves of a surrogate
// pair: the cut is made on the UTF-8 bytes, at a byte that starts a code
// point). A frame starting with "{" is a whole message.
//
// Sender adds backpressure on top: frames wait in a bounded queue while the
// channel's bufferedAmount is high and go out on bufferedamountlow.

export const MAX_FRAME = 16 << 10;
export const MAX_MESSAGE = 32 << 20;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Splits msg (a string) into frames of at most max UTF-8 bytes. */
export function splitFrames(msg, id, max = MAX_FRAME) {
  // Fast path: a string no longer than max/3 units is at most max bytes.
  if (msg.length * 3 <= max) return [msg];
  const bytes = encoder.encode(msg);
  if (bytes.length <= max) return [msg];
  const frames = [];
  let off = 0;
  for (let i = 0; off < bytes.length; i++) {
    const header = `#${id}:${i}:`;
    const room = max - header.length - 2;
    let n = Math.min(room, bytes.length - off);
    // Never split a code point: back up to a byte that starts one.
    while (off + n < bytes.length && n > 0 && (bytes[off + n] & 0xc0) === 0x80) n--;
    const last = off + n === bytes.length ? '1' : '0';
    frames.push(`${header}${last}:${decoder.decode(bytes.subarray(off, off + n))}`);
    off += n;
  }
  return frames;
}

export class FrameError extends Error {
  constructor(msg) { super(`bad frame: ${msg}`); this.name = 'FrameError'; }
}

/** Joins chunk frames back into messages; one per channel. */
export class Reassembler {
  constructor(limit = MAX_MESSAGE) {
    this.limit = limit;
    this.reset();
  }

  reset() {
    this.id = null;
    this.next = 0;
    this.parts = null;
    this.size = 0;
  }

  /** Returns the whole message once complete, null while chunks are missing; throws FrameError. */
  add(frame) {
    if (typeof frame !== 'string' || frame === '') throw new FrameError('empty or binary');
    if (frame[0] !== '#') {
      if (this.parts) {
        const id = this.id;
        this.reset();
        throw new FrameError(`whole message inside chunked message ${id}`);
      }
      return frame;
    }
    const m = /^#(\d+):(\d+):([01]):/.exec(frame.slice(0, 64));
    if (!m) {
      this.reset();
      throw new FrameError('chunk header');
    }
    const [head, id, idxS, last] = m;
    const idx = Number(idxS);
    if (idx === 0) {
      if (this.parts) {
        const was = this.id;
        this.reset();
        throw new FrameError(`chunked message ${id} started before ${was} ended`);
      }
      this.id = id;
      this.next = 0;
      this.parts = [];
      this.size = 0;
    }
    if (!this.parts || id !== this.id || idx !== this.next) {
      this.reset();
      throw new FrameError(`chunk ${idx} of message ${id} out of order`);
    }
    const data = frame.slice(head.length);
    // Units are a lower bound of bytes; enough to stop a runaway sender.
    if (this.size + data.length > this.limit) {
      this.reset();
      throw new FrameError(`message ${id} larger than ${this.limit} bytes`);
    }
    this.parts.push(data);
    this.size += data.length;
    this.next++;
    if (last === '1') {
      const msg = this.parts.join('');
      this.reset();
      return msg;
    }
    return null;
  }
}

/**
 * Sends JSON messages on one RTCDataChannel with framing and backpressure.
 * Frames go out while the channel's buffer is below HIGH; the rest wait in a
 * queue bounded by maxQueued bytes (send refuses beyond it rather than
 * growing without bound), drained on bufferedamountlow.
 */
export class Sender {
  constructor(channel, { high = 1 << 20, low = 256 << 10, maxQueued = 48 << 20 } = {}) {
    this.ch = channel;
    this.high = high;
    this.maxQueued = maxQueued;
    this.queue = [];
    this.head = 0;
    this.queued = 0; // string units waiting
    this.nextId = 1;
    channel.bufferedAmountLowThreshold = low;
    channel.addEventListener('bufferedamountlow', () => this.pump());
  }

  /** Queues one message (an object); false if the channel is not open or the queue is full. */
  send(obj) {
    if (this.ch.readyState !== 'open') return false;
    const text = JSON.stringify(obj);
    if (this.queued + text.length > this.maxQueued) return false;
    const frames = splitFrames(text, this.nextId);
    if (frames.length > 1) this.nextId++;
    for (const f of frames) {
      this.queue.push(f);
      this.queued += f.length;
    }
    this.pump();
    return true;
  }

  /** Bytes (units) not yet handed to the channel. */
  pending() { return this.queued; }

  pump() {
    while (this.head < this.queue.length && this.ch.readyState === 'open' && this.ch.bufferedAmount < this.high) {
      const f = this.queue[this.head];
      this.queue[this.head++] = undefined;
      this.queued -= f.length;
      try {
        this.ch.send(f);
      } catch (err) {
        console.warn('huddle: data channel send failed', err);
        this.clear();
        return;
      }
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  clear() {
    this.queue = [];
    this.head = 0;
    this.queued = 0;
  }
}
