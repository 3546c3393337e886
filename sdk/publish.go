package sdk

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
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
}

func (t *LocalRTPTrack) trackLocal() webrtc.TrackLocal { return t.TrackLocalStaticRTP }

// PublishTrack adds a track of the given codec. source is "camera",
// "microphone", "screen", "screen_audio" or "unknown": the server refuses
// the publisher offer (bad_sdp) for any other, and the track with it.
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
	r.mu.Lock()
	pub, self, grants := r.pub, r.self, r.grants
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
	r.mu.Lock()
	r.sources[id] = source
	r.mu.Unlock()
	sender, err := pub.AddTrack(pt.trackLocal())
	if err != nil {
		return fmt.Errorf("publish %s: %w", id, err)
	}
	if e, ok := pt.(encodings); ok {
		if err := e.addEncodings(pub, sender); err != nil {
			return fmt.Errorf("publish %s: %w", id, err)
		}
	}
	r.mu.Lock()
	r.tracks = append(r.tracks, pt)
	r.mu.Unlock()
	go pt.readRTCP(sender)
	r.negotiate()
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

// WriteSample sends one encoded frame.
func (t *LocalTrack) WriteSample(s media.Sample) error {
	return t.TrackLocalStaticSample.WriteSample(s)
}
