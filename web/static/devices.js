// The local camera and microphone through a call: choosing devices,
// turning each on and off, switching devices mid-call, and the level meter.
//
// Turning a track off replaces it on its sender with null, so nothing at
// all is sent (not silence, not black frames), and tells the room with a
// mute message. Switching a device replaces the track on the same sender:
// no renegotiation, the same published track id, and the others keep
// decoding.

import { plainMediaError } from './errors.js';
import { output } from './ui.js';

const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

export class LocalMedia {
  constructor() {
    this.stream = new MediaStream(); // what is published, as one stream
    this.audio = null; // live microphone track, or null
    this.video = null; // live camera track, or null
    this.micOn = true;
    this.camOn = true;
    this.cameraId = localStorage.getItem('huddle.camera') || '';
    this.micId = localStorage.getItem('huddle.mic') || '';
    this.speakerId = localStorage.getItem('huddle.speaker') || '';
    this.senders = { audio: null, video: null };
    this.serverIds = { audio: null, video: null }; // our tracks' ids on the server
    this.send = null; // (type, fields) once in a call
    this.listeners = new Set();
    this.meter = null;
  }

  on(fn) { this.listeners.add(fn); }

  changed() { for (const fn of this.listeners) fn(this); }

  /**
   * Opens camera and microphone (the chosen devices if any). Failure of one
   * is not failure of both; the result says what went wrong, in words.
   * @returns {Promise<string|null>} a warning to show, or null
   */
  async open() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.micOn = this.camOn = false;
      return 'This page is not on https or localhost, so the browser offers no camera or microphone. You can still watch and listen.';
    }
    const warnings = [];
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio: this.audioConstraints(), video: this.videoConstraints() });
      this.setTrack('audio', s.getAudioTracks()[0] || null);
      this.setTrack('video', s.getVideoTracks()[0] || null);
    } catch (both) {
      for (const kind of ['audio', 'video']) {
        try {
          const s = await navigator.mediaDevices.getUserMedia(kind === 'audio' ? { audio: this.audioConstraints() } : { video: this.videoConstraints() });
          this.setTrack(kind, s.getTracks()[0]);
        } catch (err) {
          warnings.push(plainMediaError(err, kind === 'audio' ? 'Microphone' : 'Camera'));
        }
      }
      if (warnings.length === 2 && both.name !== 'NotAllowedError' && both.name !== 'NotFoundError') {
        warnings.splice(0, 2, plainMediaError(both, 'Camera and microphone'));
      }
    }
    if (!this.audio) this.micOn = false;
    if (!this.video) this.camOn = false;
    this.changed();
    return warnings.length ? warnings.join(' ') : null;
  }

  audioConstraints() { return this.micId ? { ...AUDIO, deviceId: { exact: this.micId } } : AUDIO; }

  videoConstraints() { return this.cameraId ? { ...VIDEO, deviceId: { exact: this.cameraId } } : VIDEO; }

  /** Makes track the current one of its kind in the stream. */
  setTrack(kind, track) {
    const old = kind === 'audio' ? this.audio : this.video;
    if (old && old !== track) this.stream.removeTrack(old);
    if (track) this.stream.addTrack(track);
    if (kind === 'audio') this.audio = track;
    else this.video = track;
    if (kind === 'audio') this.startMeter();
  }

  /** Lists devices: {camera: [], mic: [], speaker: []} of {id, label}. */
  async devices() {
    const out = { camera: [], mic: [], speaker: [] };
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return out;
    const list = await navigator.mediaDevices.enumerateDevices();
    const kinds = { videoinput: 'camera', audioinput: 'mic', audiooutput: 'speaker' };
    for (const d of list) {
      const k = kinds[d.kind];
      if (!k || !d.deviceId) continue;
      out[k].push({ id: d.deviceId, label: d.label || `${k} ${out[k].length + 1}` });
    }
    return out;
  }

  /** Fills three selects with the devices and keeps them in step. */
  async fillPickers(cameraSel, micSel, speakerSel) {
    const d = await this.devices();
    const fill = (sel, list, current, none) => {
      sel.replaceChildren();
      for (const dev of list) {
        const o = document.createElement('option');
        o.value = dev.id;
        o.textContent = dev.label;
        sel.append(o);
      }
      if (!list.length) {
        const o = document.createElement('option');
        o.value = '';
        o.textContent = none;
        sel.append(o);
      }
      sel.disabled = !list.length;
      if (current && list.some((x) => x.id === current)) sel.value = current;
    };
    fill(cameraSel, d.camera, this.video && this.video.getSettings().deviceId, 'No camera');
    fill(micSel, d.mic, this.audio && this.audio.getSettings().deviceId, 'No microphone');
    const canPickSpeaker = 'setSinkId' in HTMLMediaElement.prototype;
    fill(speakerSel, canPickSpeaker ? d.speaker : [], this.speakerId, canPickSpeaker ? 'Default speaker' : 'Set by the system');
  }

  /** Joins a call: publishes both tracks through publish(track, source) -> sender. */
  attach(publish, send) {
    this.send = send;
    for (const kind of ['audio', 'video']) {
      const track = kind === 'audio' ? this.audio : this.video;
      if (!track) continue;
      const sender = publish(track, this.stream, kind === 'audio' ? 'microphone' : 'camera');
      this.senders[kind] = sender;
      const on = kind === 'audio' ? this.micOn : this.camOn;
      // Off from the pre-join screen: publish the sender, send nothing.
      if (!on && sender) sender.replaceTrack(null).catch(() => {});
    }
  }

  detach() {
    this.send = null;
    this.senders = { audio: null, video: null };
    this.serverIds = { audio: null, video: null };
  }

  /** The server announced one of our tracks: remember its id, restate a mute. */
  published(track) {
    const kind = track.kind === 'audio' ? 'audio' : 'video';
    if (track.source === 'screen') return;
    this.serverIds[kind] = track.id;
    const on = kind === 'audio' ? this.micOn : this.camOn;
    if (!on) this.tellRoom(kind, true);
  }

  tellRoom(kind, muted) {
    const id = this.serverIds[kind];
    if (this.send && id) this.send('mute', { trackId: id, muted });
  }

  /** Turns the microphone on or off. */
  async setMic(on) {
    if (on && !this.audio) {
      const err = await this.reopen('audio');
      if (err) return err;
    }
    this.micOn = on && !!this.audio;
    if (this.audio) this.audio.enabled = this.micOn;
    if (this.senders.audio) await this.senders.audio.replaceTrack(this.micOn ? this.audio : null);
    this.tellRoom('audio', !this.micOn);
    this.changed();
    return null;
  }

  /**
   * Turns the camera on or off. Off stops the camera (its light goes out);
   * on opens it again and puts the new track on the same sender.
   */
  async setCamera(on) {
    if (!on) {
      this.camOn = false;
      if (this.senders.video) await this.senders.video.replaceTrack(null);
      if (this.video) this.video.stop();
      this.tellRoom('video', true);
      this.changed();
      return null;
    }
    const err = await this.reopen('video');
    if (err) return err;
    this.camOn = true;
    this.tellRoom('video', false);
    this.changed();
    return null;
  }

  /** Opens a device of kind again (after off, or to switch) and swaps it in. */
  async reopen(kind) {
    let track;
    try {
      const c = kind === 'audio' ? { audio: this.audioConstraints() } : { video: this.videoConstraints() };
      track = (await navigator.mediaDevices.getUserMedia(c)).getTracks()[0];
    } catch (err) {
      return plainMediaError(err, kind === 'audio' ? 'Microphone' : 'Camera');
    }
    const old = kind === 'audio' ? this.audio : this.video;
    const sending = kind === 'audio' ? this.micOn : true;
    if (kind === 'audio') track.enabled = this.micOn;
    if (this.senders[kind] && sending) await this.senders[kind].replaceTrack(track);
    this.setTrack(kind, track);
    if (old && old !== track) old.stop();
    return null;
  }

  async switchCamera(id) {
    this.cameraId = id;
    localStorage.setItem('huddle.camera', id);
    if (!this.camOn) return null;
    const err = await this.reopen('video');
    this.changed();
    return err;
  }

  async switchMic(id) {
    this.micId = id;
    localStorage.setItem('huddle.mic', id);
    const err = await this.reopen('audio');
    this.changed();
    return err;
  }

  /** Plays every media element of the page through the chosen speaker. */
  async switchSpeaker(id) {
    this.speakerId = id;
    localStorage.setItem('huddle.speaker', id);
    await applySpeaker(id);
  }

  /** A 0..1 level of the microphone, for meters; 0 when off. */
  level() { return this.meter && this.micOn ? this.meter.level() : 0; }

  startMeter() {
    if (this.meter) this.meter.close();
    this.meter = this.audio ? new LevelMeter(this.audio) : null;
  }

  close() {
    if (this.meter) this.meter.close();
    this.meter = null;
    for (const t of this.stream.getTracks()) t.stop();
    this.stream = new MediaStream();
    this.audio = this.video = null;
    this.detach();
  }
}

/** Sets the output device of every audio and video element. */
export async function applySpeaker(id) {
  if (!id || !('setSinkId' in HTMLMediaElement.prototype)) return;
  output.sinkId = id; // for audio elements made later
  await Promise.all([...document.querySelectorAll('audio, video')].map((el) => el.setSinkId(id).catch(() => {})));
}

/** The loudness of a track, from an analyser node. */
class LevelMeter {
  constructor(track) {
    try {
      this.ctx = new AudioContext();
      this.src = this.ctx.createMediaStreamSource(new MediaStream([track]));
      this.an = this.ctx.createAnalyser();
      this.an.fftSize = 512;
      this.src.connect(this.an);
      this.buf = new Float32Array(this.an.fftSize);
    } catch {
      this.ctx = null;
    }
  }

  level() {
    if (!this.ctx) return 0;
    if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
    this.an.getFloatTimeDomainData(this.buf);
    let sum = 0;
    for (const v of this.buf) sum += v * v;
    const rms = Math.sqrt(sum / this.buf.length);
    // -60 dBFS .. 0 dBFS onto 0..1
    const db = 20 * Math.log10(rms || 1e-6);
    return Math.min(1, Math.max(0, (db + 60) / 60));
  }

  close() {
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = null;
  }
}
