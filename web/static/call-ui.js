// The meeting as people see it, around a Meeting: the pre-join screen
// (preview, level meter, device pickers), the controls (microphone, camera,
// screen, hand, layout, people, chat, documents, devices, full screen,
// help),
// the tiles' state (muted, hand, speaking, quality) and their layout.
// app.js creates one and hands it each Meeting.

import { LocalMedia, applySpeaker } from './devices.js';
import { RoomState } from './roomstate.js';
import { Layout } from './layout.js';
import { Controls } from './controls.js';
import { ParticipantList } from './participants.js';
import { ScreenShare } from './screenshare.js';

const $ = (id) => document.getElementById(id);

export class CallUI {
  /**
   * @param {object} opts
   * @param {import('./ui.js').Grid} opts.grid
   * @param {boolean} opts.nomedia join without camera and microphone
   * @param {(text: string, ms?: number) => void} opts.notice shows a notice
   */
  constructor({ grid, nomedia, notice }) {
    this.grid = grid;
    this.nomedia = nomedia;
    this.notice = notice;
    this.media = new LocalMedia();
    this.room = new RoomState();
    this.layout = new Layout($('grid'), grid);
    this.share = new ScreenShare();
    this.people = new ParticipantList($('people-panel'), this.room);
    this.meeting = null;
    this.hand = false;
    this.previewing = false;
    this.previewWarning = null;
    this.chat = null; // the ChatPanel, from attachChat

    grid.onChange = () => { this.layout.schedule(); this.renderTiles(); };
    grid.onPin = (id) => {
      this.layout.togglePin(id);
      // The server serves a pinned video first when bandwidth is short.
      if (this.meeting) this.meeting.layoutChanged();
    };
    this.room.on(() => this.renderTiles());
    this.media.on(() => {
      // A camera turned on again (or switched) is a new track: show it.
      const tile = this.meeting && this.meeting.self && this.grid.get(this.meeting.self.id);
      if (tile && this.media.video && this.media.camOn) tile.addVideo('local-camera', this.media.video);
      this.renderControls();
      this.renderTiles();
    });
    this.share.onChange = (on) => this.onShare(on);
    // People and chat share the side: one of them at a time, as in Meet.
    this.people.onToggle = (open) => {
      if (open && this.chat && this.chat.open) this.chat.show(false);
      this.renderControls();
    };
    this.controls = new Controls($('controls'), $('help'), this.controlList(), {
      isMicOn: () => this.media.micOn,
      setMic: (on) => this.media.setMic(on),
      inCall: () => !!this.meeting,
    });
    this.bindPrejoin();
    // On a phone the documents would cover the call: closed until asked for,
    // and closed again when the window narrows.
    const narrow = window.matchMedia('(max-width: 900px)');
    const fit = () => { $('docs-panel').hidden = narrow.matches; this.renderControls(); };
    narrow.addEventListener('change', fit);
    if (narrow.matches) $('docs-panel').hidden = true;
    // The panel's own Hide button hides the whole panel (no empty column);
    // the Documents control brings it back. Capture runs before docs-ui's
    // own handler, which only folds the panel's body.
    $('docs-toggle').addEventListener('click', (ev) => {
      ev.stopImmediatePropagation();
      this.toggleDocs();
    }, { capture: true });
    this.renderControls();
    this.meterLoop();
  }

  controlList() {
    const run = (p) => p.then((err) => { if (err) this.notice(err, 8000); });
    return [
      { id: 'mic', icon: 'mic', label: 'Mute', key: 'm', help: 'Turn your microphone off or on', run: () => run(this.media.setMic(!this.media.micOn)) },
      { id: 'cam', icon: 'cam', label: 'Stop video', key: 'v', help: 'Turn your camera off or on', run: () => run(this.media.setCamera(!this.media.camOn)) },
      { id: 'share', icon: 'screen', label: 'Share screen', key: 's', help: 'Share your screen or a window, or stop sharing', run: () => this.toggleShare() },
      { id: 'hand', icon: 'hand', label: 'Raise hand', key: 'h', help: 'Raise or lower your hand', run: () => this.setHand(!this.hand) },
      { id: 'layout', icon: 'speaker', label: 'Speaker view', key: 'l', help: 'Switch between the grid and the speaker view', run: () => this.toggleLayout() },
      { id: 'people', icon: 'people', label: 'People', key: 'p', help: 'Show or hide the participant list', run: () => this.people.show() },
      { id: 'chat', icon: 'chat', label: 'Chat', key: 'c', help: 'Show or hide the chat', run: () => this.toggleChat() },
      { id: 'docs', icon: 'docs', label: 'Documents', key: 'd', help: 'Show or hide the shared documents', run: () => this.toggleDocs() },
      { id: 'devices', icon: 'gear', label: 'Devices', key: 'e', help: 'Choose camera, microphone and speaker', run: () => this.toggleDevices() },
      { id: 'full', icon: 'full', label: 'Full screen', key: 'f', help: 'Full screen for the whole call', run: () => this.toggleFullScreen() },
      { id: 'help', icon: 'help', label: 'Shortcuts', key: '?', help: 'Show or hide this help', run: () => this.controls.showHelp() },
    ];
  }

  // --- pre-join -------------------------------------------------------------

  bindPrejoin() {
    const section = $('prejoin-media');
    if (this.nomedia) {
      section.hidden = true;
      return;
    }
    const pickers = [$('pick-camera'), $('pick-mic'), $('pick-speaker')];
    pickers[0].addEventListener('change', (ev) => this.switchDevice('camera', ev.target.value));
    pickers[1].addEventListener('change', (ev) => this.switchDevice('mic', ev.target.value));
    pickers[2].addEventListener('change', (ev) => this.switchDevice('speaker', ev.target.value));
    if (navigator.mediaDevices) {
      navigator.mediaDevices.addEventListener('devicechange', () => this.media.fillPickers(...pickers));
    }
  }

  /** Opens camera and microphone for the preview (once; again after a leave). */
  async preview() {
    if (this.nomedia || this.previewing || this.meeting) return null;
    this.previewing = true;
    const warning = await this.media.open();
    this.previewWarning = warning;
    await this.media.fillPickers($('pick-camera'), $('pick-mic'), $('pick-speaker'));
    this.showPreview();
    return warning;
  }

  showPreview() {
    const v = $('preview');
    v.srcObject = this.media.video ? new MediaStream([this.media.video]) : null;
    v.hidden = !this.media.video || !this.media.camOn;
    $('preview-note').textContent = this.previewWarning ||
      (this.media.video ? (this.media.camOn ? '' : 'Camera off') : 'No camera');
    $('preview-note').hidden = !$('preview-note').textContent;
  }

  async switchDevice(kind, id) {
    let err = null;
    if (kind === 'camera') err = await this.media.switchCamera(id);
    else if (kind === 'mic') err = await this.media.switchMic(id);
    else await this.media.switchSpeaker(id);
    if (err) this.notice(err, 8000);
    if (!this.meeting) this.showPreview();
  }

  /** The local media to publish, opened if the preview did not. */
  async mediaForJoin() {
    if (this.nomedia) return { media: null, warning: null };
    let warning = null;
    if (!this.media.audio && !this.media.video) {
      this.previewing = false;
      warning = await this.preview();
    }
    return { media: this.media, warning };
  }

  // --- in the call ------------------------------------------------------------

  /** Called with each server message about the room (Meeting.onRoomEvent). */
  onRoomEvent(msg) {
    if (msg.type === 'joined') this.room.joined(msg);
    else this.room.apply(msg);
    if (msg.type === 'speakersChanged') this.layout.setSpeaker(this.room.speakers[0] || null);
    if (msg.type === 'handRaised' && this.room.selfId && msg.participantId === this.room.selfId) {
      this.hand = !!msg.raised;
      this.renderControls();
    }
    if (msg.type === 'handRaised' && msg.raised && msg.participantId !== this.room.selfId) {
      const p = this.room.person(msg.participantId);
      if (p) this.notice(`${p.name} raised their hand.`, 5000);
    }
  }

  joined(meeting) {
    this.meeting = meeting;
    this.hand = false;
    applySpeaker(this.media.speakerId);
    this.renderControls();
  }

  left() {
    this.share.stop();
    this.meeting = null;
    this.media.close();
    this.previewing = false;
    this.room.reset();
    if (this.layout.pinned) this.layout.togglePin(this.layout.pinned);
    $('devices-pop') && ($('devices-pop').hidden = true);
    this.renderControls();
  }

  setHand(raised) {
    if (!this.meeting) return;
    this.meeting.sig.send('raiseHand', { raised });
  }

  toggleLayout() {
    this.layout.setMode(this.layout.mode === 'grid' ? 'speaker' : 'grid');
    this.renderControls();
  }

  /** The chat panel (app.js makes it); its control shows the unread count. */
  attachChat(chat) {
    this.chat = chat;
    chat.onChange = () => {
      if (chat.open && this.people.open) this.people.show(false);
      this.renderControls();
    };
    this.renderControls();
  }

  toggleChat() {
    if (!this.chat) return;
    this.chat.show();
    if (this.chat.open) this.chat.input.focus({ preventScroll: true });
  }

  toggleDocs() {
    $('docs-panel').hidden = !$('docs-panel').hidden;
    this.renderControls();
  }

  async toggleShare() {
    if (this.share.active) {
      this.share.stop();
      return;
    }
    const err = await this.share.start(this.meeting);
    if (err) this.notice(err, 8000);
  }

  onShare(on) {
    if (!this.meeting) return;
    const id = `${this.meeting.self.id}:screen`;
    if (on) {
      const tile = this.grid.upsert(id, '', { local: true, screen: true });
      tile.setName('Your screen (shared)');
      const v = this.share.stream.getVideoTracks()[0];
      if (v) tile.addVideo('local-screen', v);
    } else {
      this.grid.remove(id);
    }
    this.renderControls();
  }

  toggleFullScreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else document.documentElement.requestFullscreen().catch((err) => this.notice(`Full screen is not available: ${err.message}`, 5000));
  }

  toggleDevices() {
    let pop = $('devices-pop');
    if (!pop) {
      // The pickers live in the pre-join card; in the call they move into a
      // small panel above the controls and back when it closes.
      pop = document.createElement('div');
      pop.id = 'devices-pop';
      pop.className = 'devices-pop';
      pop.setAttribute('role', 'dialog');
      pop.setAttribute('aria-label', 'Devices');
      $('controls').before(pop);
      pop.hidden = true;
    }
    const rows = document.querySelector('.device-row');
    if (pop.hidden) {
      pop.append(rows);
      this.media.fillPickers($('pick-camera'), $('pick-mic'), $('pick-speaker'));
      pop.hidden = false;
    } else {
      $('prejoin-media').append(rows);
      pop.hidden = true;
    }
    this.renderControls();
  }

  // --- drawing ------------------------------------------------------------------

  renderControls() {
    const c = this.controls;
    if (!c) return;
    const m = this.media;
    c.set('mic', { icon: m.micOn ? 'mic' : 'micOff', label: m.micOn ? 'Mute' : 'Unmute', pressed: !m.micOn, danger: !m.micOn });
    c.set('cam', { icon: m.camOn ? 'cam' : 'camOff', label: m.camOn ? 'Stop video' : 'Start video', pressed: !m.camOn, danger: !m.camOn });
    c.set('share', { label: this.share.active ? 'Stop sharing' : 'Share screen', pressed: this.share.active });
    c.set('hand', { label: this.hand ? 'Lower hand' : 'Raise hand', pressed: this.hand });
    c.set('layout', { icon: this.layout.mode === 'grid' ? 'speaker' : 'grid', label: this.layout.mode === 'grid' ? 'Speaker view' : 'Grid view' });
    c.set('people', { pressed: this.people.open });
    if (this.chat) {
      const n = this.chat.unread;
      c.set('chat', { pressed: this.chat.open, badge: n ? (n > 99 ? '99+' : String(n)) : '', badgeLabel: `${n} unread` });
    }
    c.set('docs', { pressed: !$('docs-panel').hidden });
    c.set('devices', { pressed: !!$('devices-pop') && !$('devices-pop').hidden });
    if (!this.meeting) this.showPreview();
  }

  /** Pushes the room's state onto the tiles. */
  renderTiles() {
    const selfId = this.room.selfId;
    const active = this.room.speakers[0];
    const speaking = new Set(this.room.speakers);
    for (const [id, tile] of this.grid.tiles) {
      if (id.endsWith(':screen')) continue;
      const p = this.room.person(id);
      const self = id === selfId;
      tile.setHand(!!(p && p.hand));
      tile.setMicOff(self ? !this.media.micOn : this.room.micOff(id));
      tile.setCameraOff(self ? !this.media.camOn : this.room.cameraOff(id));
      tile.setSpeaking(id === active ? 'active' : speaking.has(id) ? 'speaking' : '');
      tile.setQuality(p ? p.quality : null);
    }
  }

  /** The level meter of the pre-join card and of the mic button. */
  meterLoop() {
    const bar = $('mic-meter');
    const tick = () => {
      const l = this.media.level();
      bar.style.width = `${Math.round(l * 100)}%`;
      const b = document.getElementById('ctl-mic');
      if (b) b.style.setProperty('--level', String(l));
      setTimeout(() => requestAnimationFrame(tick), 80);
    };
    tick();
  }

  /** Test hooks (window.huddle.call()). */
  state() {
    const people = [...this.room.people.values()].map((p) => ({
      id: p.id, name: p.name, self: p.self, hand: p.hand,
      micOff: this.room.micOff(p.id), camOff: this.room.cameraOff(p.id),
      quality: p.quality ? p.quality.quality : null,
      tracks: [...p.tracks.values()].map((t) => ({ ...t })),
    }));
    return {
      micOn: this.media.micOn,
      camOn: this.media.camOn,
      sharing: this.share.active,
      hand: this.hand,
      layout: this.layout.mode,
      pinned: this.layout.pinned,
      featured: this.layout.featured(),
      speakers: [...this.room.speakers],
      serverTrackIds: { ...this.media.serverIds },
      people,
    };
  }
}
