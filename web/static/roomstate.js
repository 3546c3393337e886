// What the page knows of the room beyond media: everyone's tracks (with
// their source and mute state), hands, connection quality and the active
// speakers, kept from the signaling messages (docs/PROTOCOL.md, "Meeting").
// Views (tiles, the participant list) subscribe and redraw.

export class RoomState {
  constructor() {
    this.selfId = null;
    /** @type {Map<string, {id: string, name: string, self: boolean, hand: boolean, quality: object|null, tracks: Map<string, {id: string, kind: string, source: string, muted: boolean}>}>} */
    this.people = new Map();
    this.speakers = []; // participant ids, loudest first
    this.listeners = new Set();
  }

  /** fn(kind, participantId) after every change; kind is the message type. */
  on(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  emit(kind, id) { for (const fn of this.listeners) fn(kind, id); }

  reset() {
    this.selfId = null;
    this.people.clear();
    this.speakers = [];
    this.emit('reset', null);
  }

  person(id) { return this.people.get(id) || null; }

  /** The source of a track ("camera", "screen", ...), or '' if unknown. */
  sourceOf(participantId, trackId) {
    const p = this.people.get(participantId);
    const t = p && p.tracks.get(trackId);
    return t ? t.source : '';
  }

  /** Whether a participant's microphone is off (muted, or none published). */
  micOff(id) {
    const p = this.people.get(id);
    if (!p) return true;
    const mics = [...p.tracks.values()].filter((t) => t.kind === 'audio' && t.source !== 'screen');
    return mics.length === 0 || mics.every((t) => t.muted);
  }

  /** Whether a participant's camera is muted (published, then turned off). */
  cameraOff(id) {
    const p = this.people.get(id);
    if (!p) return false;
    const cams = [...p.tracks.values()].filter((t) => t.kind === 'video' && t.source !== 'screen');
    return cams.length > 0 && cams.every((t) => t.muted);
  }

  upsertPerson(p, self = false) {
    let person = this.people.get(p.id);
    if (!person) {
      person = { id: p.id, name: '', self, hand: false, quality: null, tracks: new Map() };
      this.people.set(p.id, person);
    }
    person.name = p.name || p.identity || person.name || 'Guest';
    person.hand = !!p.handRaised;
    for (const t of p.tracks || []) this.addTrack(person, t);
    return person;
  }

  addTrack(person, t) {
    person.tracks.set(t.id, { id: t.id, kind: t.kind, source: t.source || '', muted: !!t.muted });
  }

  /** Takes the joined message. */
  joined(msg) {
    this.reset();
    this.selfId = msg.participant.id;
    this.upsertPerson(msg.participant, true);
    for (const p of msg.participants || []) this.upsertPerson(p);
    this.emit('joined', this.selfId);
  }

  /** Takes one server message; returns whether it was about the room. */
  apply(msg) {
    switch (msg.type) {
      case 'participantJoined':
        this.upsertPerson(msg.participant);
        break;
      case 'participantLeft':
        this.people.delete(msg.participantId);
        this.speakers = this.speakers.filter((id) => id !== msg.participantId);
        break;
      case 'trackPublished': {
        const p = this.people.get(msg.participantId);
        if (p && msg.track) this.addTrack(p, msg.track);
        break;
      }
      case 'trackUnpublished': {
        const p = this.people.get(msg.participantId);
        if (p) p.tracks.delete(msg.trackId);
        break;
      }
      case 'trackMuted': {
        const p = this.people.get(msg.participantId);
        const t = p && p.tracks.get(msg.trackId);
        if (t) t.muted = !!msg.muted;
        break;
      }
      case 'handRaised': {
        const p = this.people.get(msg.participantId);
        if (p) p.hand = !!msg.raised;
        break;
      }
      case 'speakersChanged':
        this.speakers = (msg.speakers || []).map((s) => s.participantId);
        break;
      case 'connectionQuality':
        for (const u of msg.updates || []) {
          const p = this.people.get(u.participantId);
          if (p) p.quality = { quality: u.quality, loss: u.loss || 0, jitterMs: u.jitterMs || 0, rttMs: u.rttMs || 0 };
        }
        break;
      default:
        return false;
    }
    this.emit(msg.type, msg.participantId || null);
    return true;
  }
}
