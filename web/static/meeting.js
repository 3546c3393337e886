// One meeting session: the signaling socket, the two PeerConnections and the
// tiles they feed. app.js owns the page around it.

import { Signaling, signalingURL } from './signaling.js';
import { Publisher, Subscriber } from './peers.js';
import { sourceOf, stopStream } from './media.js';
import { RenderSizes } from './adaptive.js';

export const PROTOCOL_VERSION = 1;
const JOIN_TIMEOUT_MS = 15000;
// Reconnect backoff: doubling from the first delay to the cap, each wait
// drawn between zero and all of it (full jitter), so that the clients of a
// restarted server do not all come back at once.
const RECONNECT_FIRST_MS = 250;
const RECONNECT_CAP_MS = 8000;
// Close code 4000 (cluster mode): the room moved, or its node died. All of
// the room's participants reconnect at once, so the first attempt waits a
// uniform random part of this window (protocol.ReconnectSpread).
export const CLOSE_ROOM_MOVED = 4000;
const RECONNECT_SPREAD_MS = 2000;
// Close code 4029 (cluster mode): the relay to the room's node is
// overloaded; the room did not move. Reconnecting at once meets the same
// overload: the first attempt waits half to all of a base that starts at
// 1 s (protocol.OverloadWait) and doubles, up to 16 s, for each such close
// within a minute of the last.
export const CLOSE_OVERLOADED = 4029;
const OVERLOAD_FIRST_MS = 1000;
const OVERLOAD_CAP_MS = 16000;
const OVERLOAD_MEMORY_MS = 60000;

/**
 * Whether a close ends the session for good: a leave or replacement (1000),
 * or a refusal (1008) other than too_slow. Everything else (network loss,
 * server restart 1012, too_slow) is worth a reconnect.
 */
export function finalClose(ev) {
  if (ev.code === 1000) return true;
  return ev.code === 1008 && !String(ev.reason || '').startsWith('too_slow');
}

/** An error the server sent, with its code (bad_token, forbidden, ...). */
export class ServerError extends Error {
  constructor(msg) {
    super(msg.message || msg.code || 'server error');
    this.code = msg.code || '';
    this.ref = msg.ref || '';
  }
}

export class Meeting {
  /**
   * @param {object} opts
   * @param {string} opts.token access token (JWT)
   * @param {MediaStream|null} opts.stream local camera/mic, or null
   * @param {boolean} opts.relay force TURN (iceTransportPolicy 'relay')
   * @param {import('./ui.js').Grid} opts.grid
   * @param {(err: Error, fatal: boolean) => void} opts.onError
   * @param {(notice: string) => void} opts.onNotice
   * @param {(collab: RTCDataChannel, cursors: RTCDataChannel, joined: object) => void} [opts.onChannels]
   *   called once joined, with the publisher's data channels
   * @param {import('./devices.js').LocalMedia} [opts.localMedia] camera and
   *   microphone to publish (instead of stream), with mute and switching
   * @param {(msg: object) => void} [opts.onRoomEvent] joined, participants,
   *   tracks and the meeting family (mute, hands, speakers, quality)
   * @param {(participantId: string, trackId: string) => string} [opts.sourceOf]
   *   a remote track's source, to give screen shares their own tile
   * @param {() => string|null} [opts.pinnedTile] the tile this viewer pinned,
   *   which the server serves first when the downlink is short
   */
  constructor({ token, stream, relay, grid, onError, onNotice, onChannels = () => {}, onState = () => {}, onEvent = () => {}, localMedia = null, onRoomEvent = () => {}, sourceOf = () => '', pinnedTile = () => null }) {
    this.onChannels = onChannels;
    // onState('reconnecting' | 'joined') while the session survives a drop;
    // onEvent(msg) gets joined (with its chat history), chatMessage,
    // presence and typing, for the chat and presence panels.
    this.onState = onState;
    this.onEvent = onEvent;
    this.sessionId = '';
    this.lastSeq = 0;
    this.reconnecting = false;
    this.attempt = 0;
    this.retryTimer = 0;
    this.localMedia = localMedia;
    this.onRoomEvent = onRoomEvent;
    this.sourceOf = sourceOf;
    this.token = token;
    this.stream = stream;
    this.relay = relay;
    this.grid = grid;
    this.onError = onError;
    this.onNotice = onNotice;
    this.sig = null;
    this.publisher = null;
    this.subscriber = null;
    this.self = null; // our participant, from joined
    this.room = '';
    this.ended = false;
    // Participants who left: a track of theirs still in flight in a
    // subscriber offer must not bring back a nameless tile.
    this.departed = new Set();
    this.pinnedTile = pinnedTile;
    // Adaptive quality (adaptive.js): remote video track id -> its tile id,
    // and why the server paused it (until it resumes).
    this.remoteVideos = new Map();
    this.pausedVideos = new Map();
    this.renderSizes = null;
  }

  /**
   * Connects and joins. Resolves with the joined message once the server
   * accepted us; rejects with a ServerError (e.g. bad_token) or a network error.
   */
  join() {
    return new Promise((resolve, reject) => {
      // The server answers within a second; a silent one must not leave the
      // page saying "Joining…" for ever.
      const timer = setTimeout(() => this.failJoin(new Error(`the server did not answer the join within ${JOIN_TIMEOUT_MS / 1000} seconds`)), JOIN_TIMEOUT_MS);
      const done = () => clearTimeout(timer);
      this.settleJoin = { resolve: (v) => { done(); resolve(v); }, reject: (e) => { done(); reject(e); } };
      this.sig = new Signaling(signalingURL(), (msg) => this.handle(msg), (ev) => this.lost(ev));
      this.sig.open().then(
        () => this.sig.send('join', { version: PROTOCOL_VERSION, token: this.token }),
        (err) => this.failJoin(err),
      );
    });
  }

  /** Sends a message on the current socket; false while reconnecting. */
  send(type, fields = {}) {
    return !!this.sig && !this.reconnecting && this.sig.send(type, fields);
  }

  /**
   * The socket dropped: try to resume (same participant, tracks and
   * documents, the missed events replayed) with exponential backoff and
   * jitter. A server that no longer knows the session answers with a
   * fresh joined, and the call is rebuilt (clean rejoin).
   */
  reconnect(roomMoved = false, overloaded = false) {
    if (this.ended) return;
    if (!this.reconnecting) {
      this.reconnecting = true;
      this.attempt = 0;
      this.onState('reconnecting');
    }
    const base = Math.min(RECONNECT_CAP_MS, RECONNECT_FIRST_MS * 2 ** (this.attempt - 1));
    let wait = this.attempt === 0 ? 0 : Math.random() * base;
    if (this.attempt === 0 && roomMoved) wait = Math.random() * RECONNECT_SPREAD_MS;
    if (this.attempt === 0 && overloaded) {
      const now = Date.now();
      const recent = this.overloadBase && now - this.overloadAt <= OVERLOAD_MEMORY_MS;
      this.overloadBase = recent ? Math.min(OVERLOAD_CAP_MS, 2 * this.overloadBase) : OVERLOAD_FIRST_MS;
      this.overloadAt = now;
      wait = this.overloadBase / 2 + Math.random() * this.overloadBase / 2;
      console.info(`huddle: relay overloaded; reconnecting in ${Math.round(wait)} ms (base ${this.overloadBase} ms)`);
      // Later attempts back off from there rather than from 250 ms.
      this.attempt = Math.max(1, Math.ceil(Math.log2(this.overloadBase / RECONNECT_FIRST_MS)));
    }
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.ended) return;
      const sig = new Signaling(signalingURL(), (msg) => { if (this.sig === sig) this.handle(msg); }, (ev) => {
        if (this.sig === sig) this.lost(ev);
      });
      this.sig = sig;
      sig.open().then(
        () => sig.send('join', { version: PROTOCOL_VERSION, token: this.token, sessionId: this.sessionId, lastSeq: this.lastSeq }),
        () => { if (this.sig === sig) this.reconnect(); },
      );
    }, wait);
  }

  /** For tests: the ICE ufrags in use (they change on an ICE restart). */
  iceUfrags() {
    const ufrag = (d) => (d && (/a=ice-ufrag:(\S+)/.exec(d.sdp) || [])[1]) || null;
    return {
      publisher: this.publisher ? ufrag(this.publisher.pc.localDescription) : null,
      subscriber: this.subscriber ? ufrag(this.subscriber.pc.remoteDescription) : null,
    };
  }

  /** For tests: cut the socket as a network failure would. */
  dropSignaling() {
    if (this.sig && this.sig.ws) this.sig.ws.close(4999, 'test: dropped');
  }

  failJoin(err) {
    if (!this.settleJoin) return;
    const { reject } = this.settleJoin;
    this.settleJoin = null;
    this.teardown();
    reject(err);
  }

  /** The socket closed without us asking. */
  lost(ev) {
    if (this.settleJoin) {
      this.failJoin(new Error(`the server closed the connection before the join completed${ev.reason ? `: ${ev.reason}` : ''} (code ${ev.code})`));
      return;
    }
    if (this.ended) return;
    if (finalClose(ev)) {
      this.teardown();
      this.onError(new Error(`lost the connection to the server (code ${ev.code}${ev.reason ? `, ${ev.reason}` : ''})`), true);
      return;
    }
    console.info(`huddle: signaling dropped (code ${ev.code}${ev.reason ? `, ${ev.reason}` : ''}); reconnecting`);
    this.reconnect(ev.code === CLOSE_ROOM_MOVED, ev.code === CLOSE_OVERLOADED);
  }

  /** Dispatches one server message. Called in arrival order. */
  handle(msg) {
    if (this.ended) return;
    switch (msg.type) {
      case 'joined': return this.reconnecting ? this.onRejoined(msg) : this.onJoined(msg);
      case 'error': return this.onServerError(msg);
    }
    if (!this.self) {
      console.warn('huddle: message before joined, ignored', msg);
      return;
    }
    // Room events carry seq: remember the last, to resume after it.
    if (typeof msg.seq === 'number' && msg.seq > this.lastSeq) this.lastSeq = msg.seq;
    switch (msg.type) {
      case 'chatMessage':
      case 'typing':
        return this.onEvent(msg);
      case 'presence': {
        const tile = this.grid.get(msg.participantId);
        if (tile) tile.el.dataset.presence = msg.reconnecting ? 'reconnecting' : msg.state;
        return this.onEvent(msg);
      }
      case 'answer':
        if (msg.target !== 'publisher') return this.protocolWarning(msg);
        return this.publisher.handleAnswer(msg.sdp).catch((err) => this.onError(err, false));
      case 'offer':
        if (msg.target !== 'subscriber') return this.protocolWarning(msg);
        return this.subscriber.handleOffer(msg.sdp).catch((err) => this.onError(new Error(`could not apply the server's offer: ${err.message}`), false));
      case 'candidate': {
        const peer = msg.target === 'publisher' ? this.publisher : msg.target === 'subscriber' ? this.subscriber : null;
        if (!peer) return this.protocolWarning(msg);
        return peer.addRemoteCandidate(msg.candidate);
      }
      case 'participantJoined':
        this.onRoomEvent(msg);
        return this.addParticipant(msg.participant);
      case 'participantLeft':
        this.departed.add(msg.participantId);
        for (const [trackId, v] of this.remoteVideos) if (v.participantId === msg.participantId) this.forgetVideo(trackId);
        this.onRoomEvent(msg);
        this.grid.remove(`${msg.participantId}:screen`);
        return this.grid.remove(msg.participantId);
      case 'trackPublished':
        // The track itself arrives with the server's next subscriber offer.
        if (msg.participantId === this.self.id && this.localMedia) this.localMedia.published(msg.track);
        return this.onRoomEvent(msg);
      case 'trackUnpublished': {
        const tileId = this.tileIdFor(msg.participantId, msg.trackId);
        const tile = this.grid.get(tileId);
        if (tile) tile.removeTrack(msg.trackId);
        this.forgetVideo(msg.trackId);
        if (tileId !== msg.participantId) this.grid.remove(tileId);
        return this.onRoomEvent(msg);
      }
      case 'trackMuted':
      case 'handRaised':
      case 'speakersChanged':
      case 'connectionQuality':
        return this.onRoomEvent(msg);
      case 'videoPaused':
        return this.onVideoPaused(msg);
      case 'publishLayers':
        // Dynacast: encode only the layers someone receives.
        return this.publisher.setLayers(msg.clientTrackId, msg.layers);
      default:
        console.warn('huddle: unknown message type', msg.type, msg);
    }
  }

  protocolWarning(msg) {
    console.warn('huddle: message for an unexpected target, ignored', msg);
  }

  onServerError(msg) {
    const err = new ServerError(msg);
    if (this.reconnecting) {
      // An error before joined refuses the join: the token expired, the
      // room is full... The server closes the socket; do not retry.
      this.ended = true;
      this.teardown();
      this.onError(err, true);
      return;
    }
    if (this.settleJoin) {
      // Before joined every error is about the join (bad_token, bad_version):
      // the server closes the socket after it.
      this.failJoin(err);
      return;
    }
    if (err.ref === 'renderSize') {
      // A size for a track that ended meanwhile, or media not set up yet:
      // the next report (or none, for an ended track) makes it right.
      console.info('huddle: render size refused', msg);
      return;
    }
    if (err.ref === 'offer' && this.publisher) {
      if (err.code === 'rate_limited') {
        // Only dropped, not refused: it goes again in a moment, and the
        // call is none the worse.
        console.info('huddle: publisher offer dropped by the rate limit; offering again', msg);
        this.publisher.offerDropped();
        return;
      }
      // Our publisher offer was refused; no answer will come for it.
      this.publisher.offerRefused();
    }
    console.warn('huddle: server error', msg);
    this.onError(err, false);
  }

  onJoined(msg) {
    if (!this.settleJoin) return; // a second joined makes no sense; ignore it
    this.setupCall(msg);
    const { resolve } = this.settleJoin;
    this.settleJoin = null;
    resolve(msg);
  }

  /** A joined on a new socket after a drop: resumed, or a fresh start. */
  onRejoined(msg) {
    this.reconnecting = false;
    this.attempt = 0;
    this.sessionId = msg.sessionId || '';
    if (msg.resumed) {
      this.self = msg.participant;
      if (!msg.replayed) {
        // A snapshot: the room as it is now replaces our view.
        this.lastSeq = msg.seq || 0;
        const present = new Set((msg.participants || []).map((p) => p.id));
        for (const id of [...this.grid.tiles.keys()]) {
          if (id !== this.self.id && !present.has(id)) this.grid.remove(id);
        }
        for (const p of msg.participants || []) this.addParticipant(p);
        this.onRoomEvent(msg);
      }
      // Restart ICE on the publisher (the server restarts the
      // subscriber's): the network may have changed under us. An offer
      // whose answer was lost is rolled back first.
      const pub = this.publisher;
      pub.offerRefused().then(() => pub.pc.restartIce());
    } else {
      // The server did not know us any more (grace period over, or it
      // restarted): rebuild the call as a new participant.
      if (this.publisher) this.publisher.close();
      if (this.subscriber) this.subscriber.close();
      this.closeAdaptive();
      this.grid.clear();
      this.departed.clear();
      this.setupCall(msg);
    }
    this.onState('joined');
    this.onEvent(msg);
  }

  setupCall(msg) {
    this.self = msg.participant;
    this.room = msg.room;
    this.sessionId = msg.sessionId || '';
    this.lastSeq = msg.seq || 0;
    const grants = msg.grants || {};
    const config = {
      iceServers: (msg.iceServers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })),
    };
    if (this.relay) config.iceTransportPolicy = 'relay';

    const send = (type, fields) => this.send(type, fields);
    this.renderSizes = new RenderSizes(send, (trackId) => {
      const v = this.remoteVideos.get(trackId);
      return !!v && v.tileId === this.pinnedTile();
    });
    this.subscriber = new Subscriber(config, send, (ev) => this.onRemoteTrack(ev));
    this.publisher = new Publisher(config, send, (err) => this.onError(err, false));
    for (const peer of [this.publisher, this.subscriber]) {
      peer.onConnectionState = (state) => {
        // ICE gives up only after its timers ran out: say so, the call
        // cannot recover on its own.
        if (state === 'failed' && !this.ended) {
          this.onError(new Error(`the ${peer.target} media connection failed (no ICE path to the server)`), false);
        }
      };
    }

    // Shared documents ride on the publisher's data channels.
    this.onChannels(this.publisher.collab, this.publisher.cursors, msg);

    this.onRoomEvent(msg);
    this.grid.upsert(this.self.id, this.self.name || this.self.identity, { local: true });
    for (const p of msg.participants || []) this.addParticipant(p);

    if (this.localMedia) {
      if (grants.publish === false) {
        this.onNotice('This invitation lets you watch and listen only; your camera and microphone stay off.');
      } else {
        const video = this.localMedia.video;
        if (video) this.grid.get(this.self.id).addVideo('local-camera', video);
        this.localMedia.attach((track, stream, source) => this.publisher.addTrack(track, stream, source), send);
      }
    } else if (this.stream) {
      if (grants.publish === false) {
        this.onNotice('This invitation lets you watch and listen only; your camera and microphone stay off.');
        stopStream(this.stream);
        this.stream = null;
      } else {
        // The local preview shows video only: hearing yourself is confusing.
        const video = this.stream.getVideoTracks()[0];
        if (video) this.grid.get(this.self.id).addVideo(video.id, video);
        for (const track of this.stream.getTracks()) {
          this.publisher.addTrack(track, this.stream, sourceOf(track));
        }
      }
    }
    // With or without media the data channels were added, so the browser
    // fires negotiationneeded and the publisher offers by itself.
    this.onEvent(msg);
  }

  addParticipant(p) {
    if (!p || !p.id || (this.self && p.id === this.self.id)) return;
    this.departed.delete(p.id);
    const tile = this.grid.upsert(p.id, p.name || p.identity || 'Guest');
    if (tile && p.state) tile.el.dataset.presence = p.reconnecting ? 'reconnecting' : p.state;
  }

  /** A screen share gets a tile of its own, next to its sharer's. */
  tileIdFor(participantId, trackId) {
    return this.sourceOf(participantId, trackId) === 'screen' ? `${participantId}:screen` : participantId;
  }

  /** Publishes one more local track (a screen share); returns its sender. */
  publishTrack(track, stream, source) {
    return this.publisher ? this.publisher.addTrack(track, stream, source) : null;
  }

  unpublishTrack(sender) {
    if (this.publisher && sender) this.publisher.removeTrack(sender);
  }

  onRemoteTrack({ participantId, trackId, track, stream }) {
    if (this.departed.has(participantId)) return;
    // The participant list usually names them first; if the track wins the
    // race, the tile starts unnamed and participantJoined fills it in.
    const tileId = this.tileIdFor(participantId, trackId);
    if (tileId !== participantId) this.grid.upsert(participantId, '');
    const tile = this.grid.upsert(tileId, tileId === participantId ? '' : this.grid.nameOf(participantId), { screen: tileId !== participantId });
    if (track.kind === 'video') {
      tile.addVideo(trackId, track);
      this.remoteVideos.set(trackId, { participantId, tileId });
      tile.setVideoPaused(trackId, this.pausedVideos.get(trackId) || null);
      if (this.renderSizes) this.renderSizes.watch(trackId, tile.el, () => tile.shown === track);
    } else {
      tile.addAudio(trackId, track);
    }
    if (stream) {
      // The server ending a track (renegotiation) removes it from the stream.
      stream.addEventListener('removetrack', (ev) => {
        if (ev.track !== track) return;
        tile.removeTrack(trackId);
        if (track.kind === 'video') this.forgetVideo(trackId);
      });
    }
  }

  /**
   * The server paused or resumed a video it sends us: for our bandwidth
   * (the tile says so) or because we reported its tile hidden. A notice
   * may come before the track itself: it is kept until then.
   */
  onVideoPaused(msg) {
    if (typeof msg.trackId !== 'string') return;
    const reason = msg.paused ? (msg.reason || 'bandwidth') : null;
    if (reason) this.pausedVideos.set(msg.trackId, reason);
    else this.pausedVideos.delete(msg.trackId);
    const v = this.remoteVideos.get(msg.trackId);
    const tile = v && this.grid.get(v.tileId);
    if (tile) tile.setVideoPaused(msg.trackId, reason);
  }

  forgetVideo(trackId) {
    this.remoteVideos.delete(trackId);
    this.pausedVideos.delete(trackId);
    if (this.renderSizes) this.renderSizes.unwatch(trackId);
  }

  /** The layout moved tiles or the pin changed: report sizes again soon. */
  layoutChanged() {
    if (this.renderSizes) this.renderSizes.schedule();
  }

  closeAdaptive() {
    if (this.renderSizes) this.renderSizes.close();
    this.renderSizes = null;
    this.remoteVideos.clear();
    this.pausedVideos.clear();
  }

  /** For tests: adaptive quality as this page sees it. */
  adaptiveState() {
    const pub = this.publisher;
    const cam = this.localMedia && this.localMedia.senders.video;
    let camera = [];
    if (pub && cam) for (const [id, s] of pub.senders) if (s === cam) camera = pub.layers(id);
    return {
      renderSizes: this.renderSizes ? this.renderSizes.reports() : [],
      paused: [...this.pausedVideos].map(([trackId, reason]) => ({ trackId, reason })),
      cameraLayers: camera,
    };
  }

  /** Statistics for window.huddle.remoteVideoStats. */
  async remoteVideoStats() {
    if (!this.subscriber) return [];
    const stats = await this.subscriber.videoStats();
    return stats.map((s) => ({ ...s, name: this.grid.nameOf(s.participantId) }));
  }

  /** ICE state and selected candidate types of both PCs. */
  async iceInfo() {
    if (!this.publisher) return null;
    const [publisher, subscriber] = await Promise.all([this.publisher.iceInfo(), this.subscriber.iceInfo()]);
    return { publisher, subscriber };
  }

  /** Leaves on purpose: tell the server, then drop everything. */
  leave() {
    if (this.ended) return;
    if (this.sig) this.sig.send('leave');
    this.teardown();
  }

  teardown() {
    this.ended = true;
    clearTimeout(this.retryTimer);
    if (this.publisher) this.publisher.close();
    if (this.subscriber) this.subscriber.close();
    this.closeAdaptive();
    if (this.sig) this.sig.close();
    stopStream(this.stream);
    this.stream = null;
    this.grid.clear();
  }
}
