// Notices a signaling server that went silent (docs/PROTOCOL.md,
// "Keepalive"). The browser answers the server's WebSocket pings out of the
// page's sight, so a paused server, or a path cut without a reset, would
// leave the socket open for ever. Any message counts as word from the
// server; after PING_AFTER_MS of silence the page asks with a ping (the
// pong is word too), and after DEAD_AFTER_MS in all it gives up.

/** Silence before the page sends a ping. */
export const PING_AFTER_MS = 10000;
/** Silence after which the socket is taken as dead: sdk.DefaultServerTimeout. */
export const DEAD_AFTER_MS = 15000;

export class Watchdog {
  /**
   * @param {(id: string) => void} ping sends a ping with this id
   * @param {(silentMs: number) => void} onDead called once, when the
   *   server has said nothing for deadMs; the watchdog has stopped by then
   */
  constructor(ping, onDead, { pingAfterMs = PING_AFTER_MS, deadAfterMs = DEAD_AFTER_MS } = {}) {
    this.ping = ping;
    this.onDead = onDead;
    this.pingAfterMs = pingAfterMs;
    this.deadAfterMs = deadAfterMs;
    this.last = performance.now();
    this.pinged = false; // a ping went out in this silence
    this.seq = 0;
    this.timer = setTimeout(() => this.check(), pingAfterMs);
  }

  /** Something arrived from the server. Cheap: the timer is not touched. */
  heard() {
    this.last = performance.now();
    this.pinged = false;
  }

  /**
   * Runs when the silence may have reached a threshold; a message that
   * arrived meanwhile moved `last`, and the timer is set again from there.
   */
  check() {
    this.timer = 0;
    const silent = performance.now() - this.last;
    if (silent >= this.deadAfterMs) {
      this.onDead(silent);
      return;
    }
    if (silent >= this.pingAfterMs && !this.pinged) {
      this.pinged = true;
      this.ping(String(++this.seq));
    }
    const next = silent < this.pingAfterMs ? this.pingAfterMs : this.deadAfterMs;
    this.timer = setTimeout(() => this.check(), next - silent);
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = 0;
  }
}
