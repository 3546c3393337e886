// The video grid: one tile per participant (and one per screen share), the
// local one first; layout.js places them. Names only ever go through
// textContent, never innerHTML: they come from other people.

import { icon } from './icons.js';

/** The chosen speaker (audio output device); '' is the system default. */
export const output = { sinkId: '' };

export class Grid {
  /**
   * @param {HTMLElement} el the grid container
   * @param {HTMLTemplateElement} template a <template> holding one tile
   */
  constructor(el, template) {
    this.el = el;
    this.template = template;
    this.tiles = new Map(); // tile id (participant id, or id + ':screen') -> Tile
    this.onChange = () => {}; // tiles added or removed (layout)
    this.onPin = () => {}; // (tile id) the pin button was pressed
  }

  /** Adds a participant's tile, or renames it if it exists. */
  upsert(id, name, { local = false, screen = false } = {}) {
    let tile = this.tiles.get(id);
    if (!tile) {
      tile = new Tile(this.template, id, local);
      tile.el.classList.toggle('screen', screen);
      tile.pinButton.addEventListener('click', () => this.onPin(id));
      this.tiles.set(id, tile);
      if (local && !screen) this.el.prepend(tile.el);
      else this.el.append(tile.el);
      this.updateCount();
    }
    if (name) tile.setName(screen ? `${name}'s screen` : local ? `${name} (you)` : name);
    return tile;
  }

  get(id) { return this.tiles.get(id); }

  nameOf(id) {
    const tile = this.tiles.get(id);
    return tile ? tile.name : '';
  }

  remove(id) {
    const tile = this.tiles.get(id);
    if (!tile) return;
    tile.destroy();
    this.tiles.delete(id);
    this.updateCount();
  }

  clear() {
    for (const id of [...this.tiles.keys()]) this.remove(id);
  }

  updateCount() {
    this.el.dataset.count = String(this.tiles.size);
    this.onChange();
  }
}

class Tile {
  constructor(template, id, local) {
    this.el = template.content.firstElementChild.cloneNode(true);
    this.el.dataset.participantId = id;
    this.el.classList.toggle('local', local);
    this.video = this.el.querySelector('video');
    this.avatar = this.el.querySelector('.avatar');
    this.label = this.el.querySelector('.name');
    this.badges = {
      hand: this.el.querySelector('.badge.hand'),
      mic: this.el.querySelector('.badge.mic-off'),
      quality: this.el.querySelector('.badge.quality'),
    };
    this.badges.hand.replaceChildren(icon('hand'));
    this.badges.mic.replaceChildren(icon('micOff'));
    this.pinButton = this.el.querySelector('.tile-btn.pin');
    this.pinButton.replaceChildren(icon('pin'));
    this.el.querySelector('.tile-btn.full').replaceChildren(icon('full'));
    this.el.querySelector('.tile-btn.full').addEventListener('click', () => this.fullScreen());
    this.local = local;
    this.name = '';
    this.videoTracks = new Map(); // track id -> MediaStreamTrack, newest shown
    this.pausedVideos = new Map(); // track id -> why the server paused it
    this.pausedNote = this.el.querySelector('.paused-note');
    this.pausedNote.querySelector('.paused-icon').replaceChildren(icon('slow'));
    this.pausedNote.title = 'The server paused this video because your network cannot carry it now; it comes back by itself when the network allows.';
    this.audio = new Map(); // track id -> <audio>
  }

  setName(name) {
    this.name = name;
    this.label.textContent = name;
    this.avatar.textContent = [...name.trim()][0] || '?';
  }

  /** Shows a video track; the newest one wins if there are several. */
  addVideo(trackId, track) {
    this.videoTracks.set(trackId, track);
    this.showVideo(track);
  }

  /** Plays an audio track. Never called for the local tile: no echo. */
  addAudio(trackId, track) {
    if (this.audio.has(trackId)) return;
    const el = document.createElement('audio');
    el.autoplay = true;
    el.srcObject = new MediaStream([track]);
    if (output.sinkId && el.setSinkId) el.setSinkId(output.sinkId).catch(() => {});
    this.audio.set(trackId, el);
    this.el.append(el);
    play(el);
  }

  removeTrack(trackId) {
    const audio = this.audio.get(trackId);
    if (audio) {
      audio.srcObject = null;
      audio.remove();
      this.audio.delete(trackId);
    }
    this.pausedVideos.delete(trackId);
    if (this.videoTracks.delete(trackId)) {
      const rest = [...this.videoTracks.values()];
      this.showVideo(rest.length ? rest[rest.length - 1] : null);
    }
  }

  /**
   * The server paused (reason 'bandwidth' or 'hidden') or resumed (reason
   * null) one of this tile's videos for us.
   */
  setVideoPaused(trackId, reason) {
    if (reason) this.pausedVideos.set(trackId, reason);
    else this.pausedVideos.delete(trackId);
    this.showPaused();
  }

  /**
   * A video paused for lack of bandwidth keeps its last frame, dimmed, with
   * a note saying why, so that nobody takes it for a frozen call. A video
   * paused because its tile is hidden needs no note: nobody sees it.
   */
  showPaused() {
    let reason = '';
    for (const [id, t] of this.videoTracks) if (t === this.shown) reason = this.pausedVideos.get(id) || '';
    if (reason) this.el.dataset.videoPaused = reason;
    else delete this.el.dataset.videoPaused;
    this.pausedNote.hidden = reason !== 'bandwidth';
  }

  showVideo(track) {
    if (this.shown === track) return;
    if (this.shown) this.shown.onmute = this.shown.onunmute = null;
    this.shown = track;
    this.showPaused();
    if (!track) {
      this.video.srcObject = null;
      this.el.classList.remove('has-video');
      return;
    }
    // The video element is always muted: audio plays from <audio> elements,
    // so autoplay is never blocked and our own voice never echoes.
    this.video.srcObject = new MediaStream([track]);
    play(this.video);
    // A remote track is muted until its first frames arrive, and again
    // while its sender pauses: show the initial instead of a black box.
    const update = () => this.el.classList.toggle('has-video', !track.muted && track.readyState === 'live');
    this.refreshVideo = update;
    track.onmute = track.onunmute = update;
    update();
  }

  /** Hand raised or not. */
  setHand(raised) { this.badges.hand.hidden = !raised; }

  /** The microphone is off (muted, or none published). */
  setMicOff(off) {
    this.badges.mic.hidden = !off;
    this.el.classList.toggle('mic-off', off);
  }

  /** The camera is off: show the initial even if frames linger. */
  setCameraOff(off) { this.el.classList.toggle('cam-off', off); }

  /** Active speaker highlight: 'active' (the first), 'speaking', or ''. */
  setSpeaking(how) {
    this.el.classList.toggle('speaking', how === 'speaking' || how === 'active');
    this.el.classList.toggle('active-speaker', how === 'active');
  }

  setPinned(pinned) {
    this.el.classList.toggle('pinned', pinned);
    this.pinButton.title = pinned ? 'Unpin' : 'Pin this tile (large for you only)';
    this.pinButton.setAttribute('aria-label', pinned ? 'Unpin' : 'Pin');
  }

  /** Connection quality badge, with the figures as its tooltip. */
  setQuality(q) {
    const b = this.badges.quality;
    if (!q) { b.hidden = true; return; }
    b.hidden = false;
    b.dataset.level = q.quality;
    b.textContent = { excellent: '▂▄▆', good: '▂▄', poor: '▂' }[q.quality] || '';
    const rtt = q.rttMs ? `, round trip ${Math.round(q.rttMs)} ms` : '';
    b.title = `Connection ${q.quality}: ${q.loss}% packets lost, jitter ${Math.round(q.jitterMs)} ms${rtt}`;
    b.setAttribute('aria-label', b.title);
  }

  fullScreen() {
    if (document.fullscreenElement === this.el) document.exitFullscreen().catch(() => {});
    else if (this.el.requestFullscreen) this.el.requestFullscreen().catch(() => {});
  }

  destroy() {
    this.showVideo(null);
    for (const id of [...this.audio.keys()]) this.removeTrack(id);
    this.el.remove();
  }
}

function play(el) {
  el.play().catch((err) => {
    // Autoplay is allowed for muted video and, after the Join click, for
    // audio; a failure here is worth a log line, not an error box.
    if (err.name !== 'AbortError') console.warn('huddle: media element did not start', err);
  });
}
