// The signaling WebSocket (docs/PROTOCOL.md): one JSON object per text frame,
// each with a "type" field. This module only moves messages; what they mean
// is up to the caller. A watchdog (keepalive.js) takes a server that says
// nothing for too long as gone, as if the socket had closed.

import { Watchdog } from './keepalive.js';

/** The signaling URL for the page's own host, ws: or wss: to match the page. */
export function signalingURL(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

export class Signaling {
  /**
   * @param {string} url
   * @param {(msg: object) => void} onMessage called for every message, in order
   * @param {(ev: CloseEvent) => void} onClose called once when the socket
   *   closes, unless the close was asked for with close(); a server silent
   *   for too long closes it too (code 1006, a reason saying so)
   */
  constructor(url, onMessage, onClose) {
    this.url = url;
    this.onMessage = onMessage;
    this.onClose = onClose;
    this.ws = null;
    this.closing = false;
    this.watchdog = null;
  }

  /** Opens the socket; resolves once it can send. */
  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let opened = false;
      // Watched from the start: a paused server may accept the connection
      // and never answer the handshake.
      const dog = new Watchdog((id) => this.send('ping', { id }), (silentMs) => {
        // The socket's own close may take minutes on a dead path: let it
        // go without telling anyone, and report the loss now.
        ws.onopen = ws.onmessage = ws.onclose = null;
        ws.close();
        const why = `no word from the server for ${Math.round(silentMs / 1000)} s`;
        if (!opened) reject(new Error(`could not reach the signaling server at ${this.url}: ${why}`));
        else if (!this.closing) this.onClose({ code: 1006, reason: why, wasClean: false });
      });
      this.watchdog = dog;
      ws.onopen = () => { opened = true; dog.heard(); resolve(); };
      ws.onmessage = (ev) => { dog.heard(); this.dispatch(ev.data); };
      // A failed handshake fires error and then close; the close event is the
      // one place that sees every way a socket can end.
      ws.onclose = (ev) => {
        dog.stop();
        if (!opened) {
          reject(new Error(`could not reach the signaling server at ${this.url}`));
          return;
        }
        if (!this.closing) this.onClose(ev);
      };
    });
  }

  dispatch(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      console.warn('huddle: dropping a signaling frame that is not JSON', data);
      return;
    }
    if (!msg || typeof msg.type !== 'string') {
      console.warn('huddle: dropping a signaling message without a type', msg);
      return;
    }
    if (msg.type === 'pong') return; // the watchdog's; hearing it was the point
    this.onMessage(msg);
  }

  /** Sends one message; dropped silently once the socket is gone. */
  send(type, fields = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ type, ...fields }));
    return true;
  }

  /** Closes without calling onClose: the caller already knows. */
  close() {
    this.closing = true;
    if (this.watchdog) this.watchdog.stop();
    if (this.ws) this.ws.close(1000, 'bye');
  }
}
