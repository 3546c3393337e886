// Notices a signaling server that went silent (docs/PROTOCOL.md,
// "Keepalive"). The browser answers the server's WebSocket pings out of the
// page's sight, so a paused server, or a path cut without a reset, would
// leave the socket open for ever. Any message counts as word from the
// server; after PING_AFTER_MS of silence the page asks with a ping (the
// pong is word too), and after DEAD_AFTER_MS in all, its ping unanswered,
// it gives up.

/** Silence before the page sends a ping. */
export const PING_AFTER_MS = 10000;
/** Silence after which the socket is taken as dead: sdk.DefaultServerTimeout. */
export const DEAD_AFTER_MS = 15000;

export class Watchdog {
  /**
   * @param {(id: string) => void} ping sends a ping with this id
   * @param {(silentMs: number) => void} onDead called once, when the
   *   server has said nothing for deadAfterMs and a ping went unanswered;
   *   the watchdog has stopped by then
   */
  constructor(ping, onDead, { pingAfterMs = PING_AFTER_MS, deadAfterMs = DEAD_AFTER_MS } = {}) {
    this.ping = ping;
    this.onDead = onDead;
    this.pingAfterMs = pingAfterMs;
    this.deadAfterMs = deadAfterMs;
    this.last = performance.now();
    this.pingedAt = 0; // when a ping went out in this silence (0: none)
    this.seq = 0;
    this.timer = setTimeout(() => this.check(), pingAfterMs);
  }

  /** Something arrived from the server. Cheap: the timer is not touched. */
  heard() {
    this.last = performance.now();
    this.pingedAt = 0;
  }

  /**
   * Runs when the silence may have reached a threshold; a message that
   * arrived meanwhile moved `last`, and the timer is set again from there.
   * The socket is dead only once a ping has gone unanswered for the rest
   * of the window (deadAfter - pingAfter): a timer that a hidden tab's
   * throttling delayed must not condemn a server it never asked.
   */
  check() {
    this.timer = 0;
    const now = performance.now();
    const silent = now - this.last;
    const grace = this.deadAfterMs - this.pingAfterMs;
    if (silent >= this.deadAfterMs && this.pingedAt && now - this.pingedAt >= grace) {
      this.onDead(silent);
      return;
    }
    let next;
    if (silent < this.pingAfterMs) {
      next = this.pingAfterMs - silent;
    } else {
      if (!this.pingedAt) {
        this.pingedAt = now;
        this.ping(String(++this.seq));
      }
      next = Math.max(this.deadAfterMs - silent, this.pingedAt + grace - now);
    }
    this.timer = setTimeout(() => this.check(), next);
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = 0;
  }
}
