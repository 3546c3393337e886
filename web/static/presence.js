// Our own presence: away while the tab is hidden or nobody has touched the
// page for a while (?away=<seconds>, default 300), online again on the next
// sign of life. Other people's presence is kept by id for the page and the
// tests; the tiles show it through data-presence (meeting.js).

const ACTIVITY = ['pointermove', 'keydown', 'pointerdown', 'focus'];

export class Presence {
  /**
   * @param {(type: string, fields: object) => boolean} send
   * @param {number} awayAfterMs idle time before we say we are away
   */
  constructor(send, awayAfterMs) {
    this.send = send;
    this.awayAfterMs = awayAfterMs;
    this.state = 'online';
    this.status = '';
    this.people = new Map(); // participant id -> {state, status, reconnecting, lastSeen}
    this.idleTimer = 0;
    this.onActivity = () => this.active();
    this.onVisibility = () => (document.hidden ? this.set('away') : this.active());
  }

  start() {
    for (const ev of ACTIVITY) window.addEventListener(ev, this.onActivity, { passive: true });
    document.addEventListener('visibilitychange', this.onVisibility);
    this.active();
  }

  stop() {
    for (const ev of ACTIVITY) window.removeEventListener(ev, this.onActivity);
    document.removeEventListener('visibilitychange', this.onVisibility);
    clearTimeout(this.idleTimer);
    this.people.clear();
  }

  active() {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.set('away'), this.awayAfterMs);
    if (!document.hidden) this.set('online');
  }

  /** Sets our state and, when given, our custom status. */
  set(state, status = this.status) {
    if (state === this.state && status === this.status) return;
    this.state = state;
    this.status = status;
    this.send('setPresence', { state, status });
  }

  /** After a (re)join the server thinks we are online with no status. */
  resync() {
    if (this.state !== 'online' || this.status) this.send('setPresence', { state: this.state, status: this.status });
  }

  onEvent(msg) {
    if (msg.type === 'joined') {
      this.people.clear();
      for (const p of msg.participants || []) this.people.set(p.id, { state: p.state, status: p.status || '', reconnecting: !!p.reconnecting, lastSeen: p.lastSeen || 0 });
      this.resync();
    } else if (msg.type === 'presence') {
      this.people.set(msg.participantId, { state: msg.state, status: msg.status || '', reconnecting: !!msg.reconnecting, lastSeen: msg.lastSeen || 0 });
    }
  }
}
