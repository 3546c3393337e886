package sdk

import (
	"errors"
	"fmt"

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

// LocalTrack is a track this bot publishes from encoded samples.
type LocalTrack struct {
	*webrtc.TrackLocalStaticSample
	source    string
	keyframes chan struct{}
}

// KeyframeRequests delivers a value whenever a subscriber (through the
// server) asks for a keyframe. An encoder should make its next frame one.
// Requests that arrive while one is pending are merged.
func (t *LocalTrack) KeyframeRequests() <-chan struct{} { return t.keyframes }

// PublishTrack adds a track of the given codec. source is "camera",
// "microphone", "screen" or anything the bot likes.
func (r *Room) PublishTrack(codec webrtc.RTPCodecCapability, source string) (*LocalTrack, error) {
	r.mu.Lock()
	pub, self, grants := r.pub, r.self, r.grants
	n := len(r.tracks)
	r.mu.Unlock()
	if !grants.Publish {
		return nil, errors.New("publish: the token has no publish grant")
	}
	kind := "video"
	if codec.MimeType == webrtc.MimeTypeOpus {
		kind = "audio"
	}
	id := fmt.Sprintf("%s-%s-%d", kind, source, n)
	tr, err := webrtc.NewTrackLocalStaticSample(codec, id, self.ID)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", id, err)
	}
	r.mu.Lock()
	r.sources[id] = source
	r.mu.Unlock()
	sender, err := pub.AddTrack(tr)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", id, err)
	}
	lt := &LocalTrack{TrackLocalStaticSample: tr, source: source, keyframes: make(chan struct{}, 1)}
	r.mu.Lock()
	r.tracks = append(r.tracks, lt)
	r.mu.Unlock()
	go lt.readRTCP(sender)
	r.negotiate()
	return lt, nil
}

// readRTCP drains the sender's feedback (the NACK responder needs it read)
// and passes keyframe requests on.
func (t *LocalTrack) readRTCP(sender *webrtc.RTPSender) {
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
				case t.keyframes <- struct{}{}:
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
