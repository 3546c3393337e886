package sdk

import (
	"errors"
	"fmt"
	"sync"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// AudioLevelURI is the RFC 6464 header extension the server reads to find
// the active speaker.
const AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// meeting holds a room's meeting callbacks and the audio levels its
// published audio tracks carry.
type meeting struct {
	mu         sync.Mutex
	onSpeakers func([]protocol.Speaker)
	onQuality  func([]protocol.Quality)
	onMuted    func(protocol.TrackMuted)
	onHand     func(protocol.HandRaised)
	levels     *audioLevels
}

// OnSpeakersChanged is called with the room's active speakers, loudest
// first, whenever the list changes (an empty list: nobody speaks).
func (r *Room) OnSpeakersChanged(fn func([]protocol.Speaker)) {
	r.meet.mu.Lock()
	r.meet.onSpeakers = fn
	r.meet.mu.Unlock()
}

// OnConnectionQuality is called with quality updates of participants,
// this bot included, as the server measures them.
func (r *Room) OnConnectionQuality(fn func([]protocol.Quality)) {
	r.meet.mu.Lock()
	r.meet.onQuality = fn
	r.meet.mu.Unlock()
}

// OnTrackMuted is called when anyone (this bot included) mutes or unmutes
// a track.
func (r *Room) OnTrackMuted(fn func(protocol.TrackMuted)) {
	r.meet.mu.Lock()
	r.meet.onMuted = fn
	r.meet.mu.Unlock()
}

// OnHandRaised is called when anyone raises or lowers a hand.
func (r *Room) OnHandRaised(fn func(protocol.HandRaised)) {
	r.meet.mu.Lock()
	r.meet.onHand = fn
	r.meet.mu.Unlock()
}

// handleMeeting dispatches the meeting family of server messages; it
// reports whether m was one.
func (r *Room) handleMeeting(m any) bool {
	r.meet.mu.Lock()
	onSpeakers, onQuality, onMuted, onHand := r.meet.onSpeakers, r.meet.onQuality, r.meet.onMuted, r.meet.onHand
	r.meet.mu.Unlock()
	switch m := m.(type) {
	case *protocol.SpeakersChanged:
		if onSpeakers != nil {
			onSpeakers(m.Speakers)
		}
	case *protocol.ConnectionQuality:
		if onQuality != nil {
			onQuality(m.Updates)
		}
	case *protocol.TrackMuted:
		r.mu.Lock()
		if p, ok := r.participants[m.ParticipantID]; ok {
			// A fresh slice: others may hold the old one (onTrack reads it).
			p.Tracks = append([]protocol.Track(nil), p.Tracks...)
			for i := range p.Tracks {
				if p.Tracks[i].ID == m.TrackID {
					p.Tracks[i].Muted = m.Muted
				}
			}
			r.participants[m.ParticipantID] = p
		}
		r.mu.Unlock()
		if onMuted != nil {
			onMuted(*m)
		}
	case *protocol.HandRaised:
		r.mu.Lock()
		if p, ok := r.participants[m.ParticipantID]; ok {
			p.Hand = m.Raised
			r.participants[m.ParticipantID] = p
		}
		r.mu.Unlock()
		if onHand != nil {
			onHand(*m)
		}
	default:
		return false
	}
	return true
}

// SetMuted mutes or unmutes one of this bot's tracks: the track stops
// sending (nothing at all, not silence or black frames) and the room is
// told. Samples written while muted are dropped.
func (r *Room) SetMuted(t *LocalTrack, muted bool) error {
	sender := r.senderOf(t)
	if sender == nil {
		return fmt.Errorf("mute %s: not published", t.ID())
	}
	var with webrtc.TrackLocal
	if !muted {
		with = t.TrackLocalStaticSample
	}
	if err := sender.ReplaceTrack(with); err != nil {
		return fmt.Errorf("mute %s: %w", t.ID(), err)
	}
	r.meet.levels.mu.Lock()
	if muted {
		r.meet.levels.muted[sender] = t
	} else {
		delete(r.meet.levels.muted, sender)
	}
	r.meet.levels.mu.Unlock()
	return r.sendSignal(&protocol.Mute{TrackID: t.ID(), Muted: muted})
}

// RaiseHand raises or lowers this bot's hand.
func (r *Room) RaiseHand(raised bool) error {
	return r.sendSignal(&protocol.RaiseHand{Raised: raised})
}

// PublishScreen publishes a screen-share video track (source "screen"):
// the page shows it large, in its own tile.
func (r *Room) PublishScreen(codec webrtc.RTPCodecCapability) (*LocalTrack, error) {
	return r.PublishTrack(codec, "screen")
}

// SetAudioLevel sets the level, in -dBov (0 loudest, 127 silence), that the
// packets of a published audio track carry in the RFC 6464 extension from
// now on: a bot that plays sound says how loud, and the room's speaker
// detection hears it.
func (r *Room) SetAudioLevel(t *LocalTrack, dBov uint8) error {
	sender := r.senderOf(t)
	if sender == nil {
		return fmt.Errorf("audio level %s: not published", t.ID())
	}
	enc := sender.GetParameters().Encodings
	if len(enc) == 0 {
		return fmt.Errorf("audio level %s: no encoding", t.ID())
	}
	r.meet.levels.set(uint32(enc[0].SSRC), min(dBov, 127))
	return nil
}

func (r *Room) senderOf(t *LocalTrack) *webrtc.RTPSender {
	pub := r.PublisherPC()
	if pub == nil || t == nil {
		return nil
	}
	for _, s := range pub.GetSenders() {
		if s.Track() == t.TrackLocalStaticSample {
			return s
		}
		// A muted track's sender has no track: SetMuted remembered it.
		if s.Track() == nil && r.meet.levels.mutedSender(s) == t {
			return s
		}
	}
	return nil
}

func (r *Room) sendSignal(m any) error {
	r.mu.Lock()
	conn := r.conn
	r.mu.Unlock()
	if conn == nil {
		return errors.New("not connected")
	}
	return conn.send(m)
}

// audioLevels stamps the RFC 6464 extension on outgoing audio, by SSRC. It
// is an interceptor, so it sees every packet the sender writes.
type audioLevels struct {
	interceptor.NoOp
	mu     sync.Mutex
	bySSRC map[uint32]uint8
	muted  map[*webrtc.RTPSender]*LocalTrack
}

func newAudioLevels() *audioLevels {
	return &audioLevels{bySSRC: map[uint32]uint8{}, muted: map[*webrtc.RTPSender]*LocalTrack{}}
}

func (a *audioLevels) set(ssrc uint32, dBov uint8) {
	a.mu.Lock()
	a.bySSRC[ssrc] = dBov
	a.mu.Unlock()
}

func (a *audioLevels) mutedSender(s *webrtc.RTPSender) *LocalTrack {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.muted[s]
}

func (a *audioLevels) NewInterceptor(string) (interceptor.Interceptor, error) { return a, nil }

func (a *audioLevels) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == AudioLevelURI {
			id = uint8(e.ID)
		}
	}
	if id == 0 {
		return w
	}
	ssrc := info.SSRC
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, attr interceptor.Attributes) (int, error) {
		a.mu.Lock()
		level, ok := a.bySSRC[ssrc]
		a.mu.Unlock()
		if ok {
			// The voice-activity bit (0x80) is set when the level is above silence.
			b := level
			if level < 127 {
				b |= 0x80
			}
			if err := h.SetExtension(id, []byte{b}); err != nil {
				return 0, fmt.Errorf("audio level extension: %w", err)
			}
		}
		return w.Write(h, payload, attr)
	})
}

// registerAudioLevel negotiates the audio-level extension on the bot's
// audio and adds the interceptor that stamps it.
func registerAudioLevel(me *webrtc.MediaEngine, ir *interceptor.Registry, levels *audioLevels) error {
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return fmt.Errorf("audio level extension: %w", err)
	}
	ir.Add(levels)
	return nil
}
