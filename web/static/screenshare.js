// Screen sharing: a screen or window (with its audio when the browser
// offers it) published as tracks of their own, source "screen", beside the
// camera. Stopping from the browser's own "Stop sharing" bar ends the track,
// which ends the share here too.

import { plainShareError } from './errors.js';

export class ScreenShare {
  constructor() {
    this.stream = null;
    this.senders = [];
    this.meeting = null;
    this.onChange = () => {};
  }

  get active() { return !!this.stream; }

  /**
   * Asks for a screen and publishes it. Returns an error text to show, or
   * null (also when the person cancelled the picker).
   */
  async start(meeting) {
    if (this.stream) return null;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
      return 'This browser cannot share a screen from this page.';
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({
        video: { frameRate: { ideal: 15 } },
        audio: true, // the tab's or system's sound, where the browser can
      });
    } catch (err) {
      return plainShareError(err);
    }
    if (!meeting || meeting.ended) {
      for (const t of stream.getTracks()) t.stop();
      return null;
    }
    this.stream = stream;
    this.meeting = meeting;
    const video = stream.getVideoTracks()[0];
    if (video) video.contentHint = 'detail'; // text stays sharp, frames may drop
    for (const t of stream.getTracks()) {
      // The browser's "Stop sharing" ends the track without asking us.
      t.addEventListener('ended', () => this.stop());
      this.senders.push(meeting.publishTrack(t, stream, 'screen'));
    }
    this.onChange(true);
    return null;
  }

  /** Stops sharing: the tracks end and the server unpublishes them. */
  stop() {
    if (!this.stream) return;
    for (const s of this.senders) if (this.meeting && !this.meeting.ended) this.meeting.unpublishTrack(s);
    for (const t of this.stream.getTracks()) t.stop();
    this.stream = null;
    this.senders = [];
    this.meeting = null;
    this.onChange(false);
  }
}
