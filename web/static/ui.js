// The video grid: one tile per participant, the local one first. Names only
// ever go through textContent, never innerHTML: they come from other people.

export class Grid {
  /**
   * @param {HTMLElement} el the grid container
   * @param {HTMLTemplateElement} template a <template> holding one tile
   */
  constructor(el, template) {
    this.el = el;
    this.template = template;
    this.tiles = new Map(); // participant id -> Tile
  }

  /** Adds a participant's tile, or renames it if it exists. */
  upsert(id, name, { local = false } = {}) {
    let tile = this.tiles.get(id);
    if (!tile) {
      tile = new Tile(this.template, id, local);
      this.tiles.set(id, tile);
      if (local) this.el.prepend(tile.el);
      else this.el.append(tile.el);
      this.updateCount();
    }
    if (name) tile.setName(local ? `${name} (you)` : name);
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
    this.local = local;
    this.name = '';
    this.videoTracks = new Map(); // track id -> MediaStreamTrack, newest shown
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
    if (this.videoTracks.delete(trackId)) {
      const rest = [...this.videoTracks.values()];
      this.showVideo(rest.length ? rest[rest.length - 1] : null);
    }
  }

  showVideo(track) {
    if (this.shown === track) return;
    if (this.shown) this.shown.onmute = this.shown.onunmute = null;
    this.shown = track;
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
    track.onmute = track.onunmute = update;
    update();
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
