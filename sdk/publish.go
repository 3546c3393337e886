package sdk

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Codecs a bot can publish.
var (
	VP8  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	H264 = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	Opus = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
)

// trackSeq numbers local tracks.
var trackSeq atomic.Uint64

// published is a track this bot sends, as a reconnect re-publishes it.
type published interface {
	trackLocal() webrtc.TrackLocal
	readRTCP(*webrtc.RTPSender)
	refuse(error) // the server refused the offer that carried it (refusal.go)
}

// encodings is a published track with more than one encoding (simulcast.go):
// they are added to its sender before the offer.
type encodings interface {
	addEncodings(*webrtc.PeerConnection, *webrtc.RTPSender) error
}

// keyframeRequests passes a publisher's keyframe requests on.
type keyframeRequests struct{ keyframes chan struct{} }

// KeyframeRequests delivers a value whenever a subscriber (through the
// server) asks for a keyframe. An encoder should make its next frame one.
// Requests that arrive while one is pending are merged.
func (k keyframeRequests) KeyframeRequests() <-chan struct{} { return k.keyframes }

// LocalTrack is a track this bot publishes from encoded samples.
type LocalTrack struct {
	*webrtc.TrackLocalStaticSample
	keyframeRequests
	refusal
	source string
}

func (t *LocalTrack) trackLocal() webrtc.TrackLocal { return t.TrackLocalStaticSample }

// LocalRTPTrack is a track this bot publishes from RTP packets it already
// has (a gateway from another WebRTC peer, or a relay). The packets'
// SSRC and payload type are rewritten; sequence numbers and timestamps
// are sent as given.
type LocalRTPTrack struct {
	*webrtc.TrackLocalStaticRTP
	keyframeRequests
	refusal
}

func (t *LocalRTPTrack) trackLocal() webrtc.TrackLocal { return t.TrackLocalStaticRTP }

// WriteRTP sends one packet, or returns Err if the server refused the track.
func (t *LocalRTPTrack) WriteRTP(p *rtp.Packet) error {
	if err := t.Err(); err != nil {
		return err
	}
	return t.TrackLocalStaticRTP.WriteRTP(p)
}

// Write sends one marshalled packet, or returns Err if the server refused
// the track.
func (t *LocalRTPTrack) Write(b []byte) (int, error) {
	if err := t.Err(); err != nil {
		return 0, err
	}
	return t.TrackLocalStaticRTP.Write(b)
}

// PublishTrack adds a track of the given codec. source is one of
// protocol.Sources ("camera", "microphone", "screen", "screen_audio" or
// "unknown"); any other is refused here. The track goes to the server in
// the next publisher offer: if the server refuses that offer (e.g. a
// limit), the track is taken off again, its Err says why, and Options.OnError
// gets the server's error.
func (r *Room) PublishTrack(codec webrtc.RTPCodecCapability, source string) (*LocalTrack, error) {
	lt := &LocalTrack{source: source, keyframeRequests: keyframeRequests{make(chan struct{}, 1)}}
	err := r.publish(codec, source, func(id, stream string) (published, error) {
		tr, err := webrtc.NewTrackLocalStaticSample(codec, id, stream)
		lt.TrackLocalStaticSample = tr
		return lt, err
	})
	if err != nil {
		return nil, err
	}
	return lt, nil
}

// PublishRTPTrack adds a track fed with RTP packets; see LocalRTPTrack.
// Its source and a refusal are handled as by PublishTrack.
func (r *Room) PublishRTPTrack(codec webrtc.RTPCodecCapability, source string) (*LocalRTPTrack, error) {
	lt := &LocalRTPTrack{keyframeRequests: keyframeRequests{make(chan struct{}, 1)}}
	err := r.publish(codec, source, func(id, stream string) (published, error) {
		tr, err := webrtc.NewTrackLocalStaticRTP(codec, id, stream)
		lt.TrackLocalStaticRTP = tr
		return lt, err
	})
	if err != nil {
		return nil, err
	}
	return lt, nil
}

func (r *Room) publish(codec webrtc.RTPCodecCapability, source string, newTrack func(id, stream string) (published, error)) error {
	if !protocol.ValidSource(source) {
		return fmt.Errorf("publish: unknown source %q (the server refuses it): use one of %s", source, strings.Join(protocol.Sources, ", "))
	}
	r.mu.Lock()
	self, grants := r.self, r.grants
	r.mu.Unlock()
	if !grants.Publish {
		return errors.New("publish: the token has no publish grant (mint one with the publish grant, e.g. `huddle token --grants publish,subscribe`)")
	}
	kind := "video"
	if codec.MimeType == webrtc.MimeTypeOpus {
		kind = "audio"
	}
	id := fmt.Sprintf("%s-%s-%d", kind, source, trackSeq.Add(1)) // unique even when two publish at once
	pt, err := newTrack(id, self.ID)
	if err != nil {
		return fmt.Errorf("publish %s: %w", id, err)
	}
	// Under the lock, so that no offer is made between adding the track
	// and noting it as new: the offer that carries it must know it.
	r.mu.Lock()
	defer r.mu.Unlock()
	sender, err := r.pub.AddTrack(pt.trackLocal())
	if err != nil {
		return fmt.Errorf("publish %s: %w", id, err)
	}
	if e, ok := pt.(encodings); ok {
		if err := e.addEncodings(r.pub, sender); err != nil {
			_ = r.pub.RemoveTrack(sender)
			return fmt.Errorf("publish %s: %w", id, err)
		}
	}
	r.sources[id] = source
	r.tracks = append(r.tracks, pt)
	r.pubNew = append(r.pubNew, offered{pt, sender})
	go pt.readRTCP(sender)
	r.negotiateLocked()
	return nil
}

// readRTCP drains the sender's feedback (the NACK responder needs it read)
// and passes keyframe requests on.
func (k keyframeRequests) readRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				select {
				case k.keyframes <- struct{}{}:
				default:
				}
			}
		}
	}
}

// WriteSample sends one encoded frame, or returns Err if the server
// refused the track.
func (t *LocalTrack) WriteSample(s media.Sample) error {
	if err := t.Err(); err != nil {
		return err
	}
	return t.TrackLocalStaticSample.WriteSample(s)
}
