// The two PeerConnections of docs/PROTOCOL.md. Pion cannot roll back an
// offer, so each PC has one fixed offerer and offers never cross:
//   Publisher  - this page offers: its own media (sendonly) and the data
//                channels `collab` and `cursors`.
//   Subscriber - the server offers: everyone else's media.

/**
 * The camera's simulcast encodings: rids q, h, f at a quarter, half and
 * full resolution (docs/PROTOCOL.md, sfu/simulcast.go), lowest first. The
 * bitrate caps are the server allocator's nominal rates for 180p, 360p
 * and 720p, so its first guesses match what is sent. A screen share stays
 * one layer: its text must stay sharp, and a scaled-down copy of a slide
 * is rarely worth its bits.
 */
export const CAMERA_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1500000 },
];

/**
 * Runs async steps on one PeerConnection one after another. Messages for a PC
 * arrive in order on the WebSocket, but applying them is async: without this
 * a candidate arriving just after an offer could be added before
 * setRemoteDescription finished.
 */
class SerialQueue {
  constructor() { this.tail = Promise.resolve(); }
  run(step) {
    const p = this.tail.then(step);
    this.tail = p.catch(() => {}); // one failed step must not block the rest
    return p;
  }
}

/** Fields shared by both PCs: trickle ICE both ways, early candidates buffered. */
class Peer {
  /**
   * @param {string} target 'publisher' or 'subscriber'
   * @param {RTCConfiguration} config
   * @param {(type: string, fields: object) => void} send
   */
  constructor(target, config, send) {
    this.target = target;
    this.send = send;
    this.pc = new RTCPeerConnection(config);
    this.queue = new SerialQueue();
    this.earlyCandidates = [];
    this.pc.onicecandidate = (ev) => {
      // null marks the end of this PC's candidates.
      this.send('candidate', { target, candidate: ev.candidate ? ev.candidate.toJSON() : null });
    };
    this.onConnectionState = () => {};
    this.pc.onconnectionstatechange = () => this.onConnectionState(this.pc.connectionState);
  }

  /**
   * The ICE/DTLS state and the selected candidate pair's types ('host',
   * 'srflx', 'prflx', 'relay'): lets a TURN test check that media really
   * went through the relay.
   */
  async iceInfo() {
    const info = { state: this.pc.connectionState, local: null, remote: null };
    const report = await this.pc.getStats();
    let pairId = null;
    report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
    const pair = pairId && report.get(pairId);
    if (pair) {
      const l = report.get(pair.localCandidateId);
      const r = report.get(pair.remoteCandidateId);
      info.local = l ? l.candidateType : null;
      info.remote = r ? r.candidateType : null;
    }
    return info;
  }

  /** Adds a candidate from the server, holding it until a remote description exists. */
  addRemoteCandidate(candidate) {
    return this.queue.run(async () => {
      if (!this.pc.remoteDescription) {
        this.earlyCandidates.push(candidate);
        return;
      }
      await this.addCandidateNow(candidate);
    });
  }

  async flushEarlyCandidates() {
    const held = this.earlyCandidates;
    this.earlyCandidates = [];
    for (const c of held) await this.addCandidateNow(c);
  }

  async addCandidateNow(candidate) {
    try {
      // No argument means end of candidates.
      await (candidate ? this.pc.addIceCandidate(candidate) : this.pc.addIceCandidate());
    } catch (err) {
      // One unusable candidate (say, an address family this host lacks) is
      // not fatal: ICE carries on with the others.
      console.warn(`huddle: ${this.target}: ignoring candidate`, candidate, err);
    }
  }

  close() {
    this.pc.onicecandidate = null;
    this.pc.close();
  }
}

export class Publisher extends Peer {
  /**
   * @param {(err: Error) => void} onError negotiation failed on our side
   */
  constructor(config, send, onError) {
    super('publisher', config, send);
    this.onError = onError;
    this.sources = {}; // local track id -> 'camera' | 'microphone' | 'screen'
    // Local (msid) track id -> its sender: the server names a track by it
    // in publishLayers. The id stays when replaceTrack swaps the track.
    this.senders = new Map();
    this.layerSteps = Promise.resolve(); // setParameters calls, one at a time
    this.awaitingAnswer = false;
    this.renegotiate = false;
    this.lastOffer = null; // the offer message last sent, to send again (offerDropped)
    this.retryTimer = null; // a dropped offer's retry (offerDropped)

    // Always created, even with no media: documents and cursors use them.
    this.collab = this.pc.createDataChannel('collab'); // reliable and ordered by default
    this.cursors = this.pc.createDataChannel('cursors', { ordered: false, maxRetransmits: 0 });
    this.channelsOpened = new Set(); // labels that reached 'open' at least once
    for (const ch of [this.collab, this.cursors]) {
      // Nothing uses the channels yet; say when they come and go, so a
      // server that closes them is visible in the console.
      ch.addEventListener('open', () => {
        this.channelsOpened.add(ch.label);
        console.info(`huddle: data channel ${ch.label} open`);
      });
      ch.addEventListener('close', () => console.info(`huddle: data channel ${ch.label} closed`));
    }

    // The browser tells us when the offer must change (tracks or channels
    // added); negotiate() folds changes made while an offer is outstanding
    // into the next one.
    this.pc.onnegotiationneeded = () => this.negotiate();
  }

  /**
   * Publishes a local track, sendonly, labelled with its source; returns
   * its sender. A camera goes out in three simulcast layers.
   */
  addTrack(track, stream, source) {
    this.sources[track.id] = source;
    const init = { direction: 'sendonly', streams: [stream] };
    if (track.kind === 'video' && source === 'camera') init.sendEncodings = CAMERA_LAYERS.map((l) => ({ ...l }));
    const sender = this.pc.addTransceiver(track, init).sender;
    this.senders.set(track.id, sender);
    return sender;
  }

  /** Stops publishing a track: the next offer ends it on the server. */
  removeTrack(sender) {
    for (const [id, s] of this.senders) if (s === sender) this.senders.delete(id);
    if (this.pc.signalingState !== 'closed') this.pc.removeTrack(sender);
  }

  /**
   * Dynacast: the server says which simulcast layers of one of our tracks
   * anyone receives ([{rid, active}]). An inactive encoding is not
   * encoded at all, which saves our CPU and uplink; the browser starts it
   * again with a keyframe when it is made active. Returns a promise that
   * settles once applied (false: no such simulcast track).
   */
  setLayers(clientTrackId, layers) {
    const sender = this.senders.get(clientTrackId);
    if (!sender || !Array.isArray(layers)) return Promise.resolve(false);
    const want = new Map(layers.filter((l) => l && typeof l.rid === 'string').map((l) => [l.rid, !!l.active]));
    // getParameters/setParameters is a transaction: two overlapping ones
    // would fail, so they run in order.
    const step = this.layerSteps.then(async () => {
      if (this.pc.signalingState === 'closed') return false;
      const params = sender.getParameters();
      const encodings = params.encodings || [];
      let changed = false;
      for (const e of encodings) {
        if (e.rid && want.has(e.rid) && e.active !== want.get(e.rid)) {
          e.active = want.get(e.rid);
          changed = true;
        }
      }
      if (changed) await sender.setParameters(params);
      return encodings.some((e) => e.rid);
    });
    this.layerSteps = step.catch((err) => console.info('huddle: could not change the published layers', err));
    return step.catch(() => false);
  }

  /** The simulcast encodings of one of our tracks: [{rid, active}], for tests. */
  layers(clientTrackId) {
    const sender = this.senders.get(clientTrackId);
    if (!sender) return [];
    return (sender.getParameters().encodings || []).filter((e) => e.rid).map((e) => ({ rid: e.rid, active: e.active !== false }));
  }

  negotiate() {
    if (this.awaitingAnswer) {
      this.renegotiate = true;
      return;
    }
    this.awaitingAnswer = true;
    this.queue.run(async () => {
      const offer = await this.pc.createOffer();
      await this.pc.setLocalDescription(offer);
      this.lastOffer = { target: 'publisher', sdp: this.pc.localDescription.sdp, sources: { ...this.sources } };
      this.send('offer', this.lastOffer);
    }).catch((err) => {
      this.awaitingAnswer = false;
      this.onError(new Error(`could not make an offer: ${err.message}`));
    });
  }

  /** Applies the server's answer, then sends any offer that waited for it. */
  handleAnswer(sdp) {
    return this.queue.run(async () => {
      if (this.pc.signalingState !== 'have-local-offer') {
        throw new Error(`got a publisher answer in state ${this.pc.signalingState}`);
      }
      await this.pc.setRemoteDescription({ type: 'answer', sdp });
      await this.flushEarlyCandidates();
      this.awaitingAnswer = false;
      if (this.renegotiate) {
        this.renegotiate = false;
        this.negotiate();
      }
    });
  }

  /**
   * The server refused our offer (an error message with ref "offer"). Roll
   * back so that the PC is stable again and a later change can offer anew.
   */
  offerRefused() {
    return this.queue.run(async () => {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      if (this.pc.signalingState === 'have-local-offer') {
        await this.pc.setLocalDescription({ type: 'rollback' });
      }
      this.awaitingAnswer = false;
      this.renegotiate = false;
    });
  }

  /**
   * The server's message rate limit dropped our offer (an error with code
   * rate_limited and ref "offer"): it saw none of it, and nothing was wrong
   * with it. Keep it and send it again in a second, when the limit has
   * room; changes made meanwhile wait for its answer, as they would have.
   * (Rolled back instead, the tracks it carried were never offered again:
   * a screen share started during a burst never reached anyone.)
   */
  offerDropped() {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.queue.run(async () => {
        // Answered or rolled back meanwhile (a resume): nothing to resend.
        if (this.pc.signalingState !== 'have-local-offer' || !this.lastOffer) return;
        this.send('offer', this.lastOffer);
      });
    }, OFFER_RETRY_MS);
  }

  close() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    super.close();
  }
}

/** How long a dropped offer waits before it is sent again (as the SDK). */
const OFFER_RETRY_MS = 1000;

export class Subscriber extends Peer {
  /**
   * @param {(ev: {participantId: string, trackId: string, track: MediaStreamTrack, stream: MediaStream}) => void} onTrack
   */
  constructor(config, send, onTrack) {
    super('subscriber', config, send);
    // Receiver track (the browser's MediaStreamTrack id) -> whose it is and
    // its published id. Keyed by the receiver track, not the m-line: a
    // server may reuse an m-line for someone else's track later.
    this.receivers = new Map();
    this.msids = new Map(); // mid -> {streamId, trackId} from the last offer
    this.pc.ontrack = (ev) => {
      const stream = ev.streams[0];
      const fromSDP = this.msids.get(ev.transceiver.mid);
      // The stream id is the publisher's participant id; the msid track id
      // is the published track id. Browsers may give remote tracks their own
      // ids (Firefox does), so the SDP is the source of truth.
      const participantId = stream ? stream.id : fromSDP && fromSDP.streamId;
      const trackId = (fromSDP && fromSDP.trackId) || ev.track.id;
      if (!participantId) {
        console.warn('huddle: remote track without a stream id; cannot tell whose it is', ev.track);
        return;
      }
      this.receivers.set(ev.track.id, { participantId, trackId });
      onTrack({ participantId, trackId, track: ev.track, stream });
    };
  }

  /** Answers the server's offer. */
  handleOffer(sdp) {
    return this.queue.run(async () => {
      this.msids = parseMsids(sdp);
      await this.pc.setRemoteDescription({ type: 'offer', sdp });
      await this.flushEarlyCandidates();
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      this.send('answer', { target: 'subscriber', sdp: this.pc.localDescription.sdp });
    });
  }

  /**
   * Decoded-video statistics per remote video track, for tests and for a
   * future "poor connection" indicator.
   */
  async videoStats() {
    const report = await this.pc.getStats();
    // Only receivers still receiving: a track the server took away leaves
    // its transceiver inactive, and its old counters must not count.
    const live = new Map(); // mid -> receiver track id
    for (const t of this.pc.getTransceivers()) {
      if (t.mid !== null && (t.currentDirection === 'recvonly' || t.currentDirection === 'sendrecv')) {
        live.set(t.mid, t.receiver.track.id);
      }
    }
    const out = [];
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
      const receiverId = live.get(s.mid);
      if (!receiverId || (s.trackIdentifier && s.trackIdentifier !== receiverId)) return;
      const owner = this.receivers.get(receiverId);
      if (!owner) return;
      out.push({
        participantId: owner.participantId,
        trackId: owner.trackId,
        framesDecoded: s.framesDecoded || 0,
        framesReceived: s.framesReceived || 0,
        keyFramesDecoded: s.keyFramesDecoded || 0,
        pliCount: s.pliCount || 0,
        width: s.frameWidth || 0,
        height: s.frameHeight || 0,
      });
    });
    return out;
  }

}

/**
 * Reads "a=mid:" and "a=msid:<stream> <track>" from each m-section of an SDP.
 * @returns {Map<string, {streamId: string, trackId: string}>}
 */
export function parseMsids(sdp) {
  const out = new Map();
  let mid = null;
  let msid = null;
  const flush = () => {
    if (mid !== null && msid) out.set(mid, msid);
    mid = null;
    msid = null;
  };
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) flush();
    else if (line.startsWith('a=mid:')) mid = line.slice(6).trim();
    else if (line.startsWith('a=msid:')) {
      const [streamId, trackId] = line.slice(7).trim().split(/\s+/);
      if (streamId && streamId !== '-') msid = { streamId, trackId: trackId || '' };
    }
  }
  flush();
  return out;
}
