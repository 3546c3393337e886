// Adaptive stream, the page's share (docs/PROTOCOL.md, "Adaptive quality"):
// tell the server how large each remote video is shown, so that it sends
// the smallest simulcast layer that fills the tile and nothing at all to a
// tile nobody can see (off screen, the tab in the background, behind
// another tile in full screen). The server also serves pinned tiles before
// the rest when the downlink is short, so the pin goes with the size.
//
// Sizes are CSS pixels of the tile, which the video fills: the tile keeps
// its size while its video is paused (only the video's visibility changes),
// so a paused video is never mistaken for a hidden one.

// Reports wait this long after the last change: a layout moving (a tile
// animating to its new place, a window being dragged) settles first.
export const RENDER_DEBOUNCE_MS = 300;
// At most this many reports a second. The server takes 50 render sizes a
// second, and 50 messages of all kinds on the connection; a resize with
// many tiles sends the rest in the next seconds.
export const RENDER_PER_SECOND = 20;
// A size closer than this to the last one sent is not worth a report: the
// server picks among layers a factor of two apart.
const SLACK = 0.1;
// A report the socket could not take (reconnecting) is tried again after this.
const RETRY_MS = 1000;

export class RenderSizes {
  /**
   * @param {(type: string, fields: object) => boolean} send false when the
   *   message could not be sent (reconnecting)
   * @param {(trackId: string) => boolean} isPinned
   */
  constructor(send, isPinned) {
    this.send = send;
    this.isPinned = isPinned;
    this.watched = new Map(); // track id -> {el, shown: () => bool}
    this.visible = new Map(); // tile element -> on screen (IntersectionObserver)
    this.sent = new Map(); // track id -> last report sent
    this.pending = new Map(); // track id -> report waiting for the budget
    this.stamps = []; // times of the reports sent in the last second
    this.debounce = 0;
    this.flushTimer = 0;
    this.resize = new ResizeObserver(() => this.schedule());
    this.intersect = new IntersectionObserver((entries) => {
      for (const e of entries) this.visible.set(e.target, e.isIntersecting);
      this.schedule();
    });
    this.onPageChange = () => this.schedule();
    document.addEventListener('visibilitychange', this.onPageChange);
    document.addEventListener('fullscreenchange', this.onPageChange);
  }

  /**
   * Follows the size of the tile el that shows a remote video track;
   * shown() says whether the tile shows this track now (a tile shows the
   * newest of its videos; the others are hidden).
   */
  watch(trackId, el, shown = () => true) {
    const old = this.watched.get(trackId);
    if (old && old.el === el) {
      old.shown = shown;
      return;
    }
    if (old) {
      this.watched.delete(trackId);
      this.release(old.el);
    }
    const observed = [...this.watched.values()].some((w) => w.el === el);
    this.watched.set(trackId, { el, shown });
    if (!observed) {
      this.resize.observe(el);
      this.intersect.observe(el);
    }
    this.schedule();
  }

  /** Forgets a track (it ended): the server forgets its size with it. */
  unwatch(trackId) {
    const w = this.watched.get(trackId);
    if (!w) return;
    this.watched.delete(trackId);
    this.sent.delete(trackId);
    this.pending.delete(trackId);
    this.release(w.el);
  }

  release(el) {
    if ([...this.watched.values()].some((w) => w.el === el)) return;
    this.resize.unobserve(el);
    this.intersect.unobserve(el);
    this.visible.delete(el);
  }

  /** Something that changes sizes or visibility happened: measure soon. */
  schedule() {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.measure(), RENDER_DEBOUNCE_MS);
  }

  /** What the server should know about one track now. */
  report(trackId, w) {
    const full = document.fullscreenElement;
    const hidden = document.visibilityState === 'hidden' || !w.el.isConnected ||
      this.visible.get(w.el) === false || !w.shown() ||
      (!!full && full !== w.el && !full.contains(w.el));
    const width = hidden ? 0 : Math.round(w.el.clientWidth);
    const height = hidden ? 0 : Math.round(w.el.clientHeight);
    return { trackId, width, height, hidden, pinned: !hidden && !!this.isPinned(trackId) };
  }

  measure() {
    for (const [trackId, w] of this.watched) {
      if (!w.el.isConnected) {
        // The tile is gone (its participant left): nothing to tell.
        this.unwatch(trackId);
        continue;
      }
      const r = this.report(trackId, w);
      if (differs(this.sent.get(trackId), r)) this.pending.set(trackId, r);
      else this.pending.delete(trackId);
    }
    this.flush();
  }

  /** Sends what is pending, within the budget; the rest waits its turn. */
  flush() {
    clearTimeout(this.flushTimer);
    this.flushTimer = 0;
    // Each send is stamped when it has gone, not when the flush began: on a
    // busy page the sends of one flush spread out, and stamping them all
    // early would let the next second's first sends in too soon.
    const now = performance.now();
    this.stamps = this.stamps.filter((t) => now - t < 1000);
    for (const [trackId, r] of this.pending) {
      if (this.stamps.length >= RENDER_PER_SECOND) break;
      if (!this.send('renderSize', r)) {
        this.flushTimer = setTimeout(() => this.flush(), RETRY_MS);
        return;
      }
      this.stamps.push(performance.now());
      this.sent.set(trackId, r);
      this.pending.delete(trackId);
    }
    if (this.pending.size) this.flushTimer = setTimeout(() => this.flush(), 1000 - (performance.now() - this.stamps[0]) + 1);
  }

  /** The last report sent per track, for tests. */
  reports() { return [...this.sent.values()].map((r) => ({ ...r })); }

  close() {
    clearTimeout(this.debounce);
    clearTimeout(this.flushTimer);
    this.resize.disconnect();
    this.intersect.disconnect();
    document.removeEventListener('visibilitychange', this.onPageChange);
    document.removeEventListener('fullscreenchange', this.onPageChange);
    this.watched.clear();
    this.visible.clear();
    this.sent.clear();
    this.pending.clear();
  }
}

/** Whether report b is worth sending after a (undefined: nothing sent yet). */
export function differs(a, b) {
  if (!a) return true;
  if (a.hidden !== b.hidden || a.pinned !== b.pinned) return true;
  const far = (x, y) => Math.abs(x - y) > SLACK * Math.max(x, y, 1);
  return far(a.width, b.width) || far(a.height, b.height);
}
