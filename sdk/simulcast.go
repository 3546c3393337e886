package sdk

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// SimulcastRIDs name the layers of a simulcast track, lowest resolution
// first: about a quarter, half and the full resolution.
var SimulcastRIDs = [3]string{"q", "h", "f"}

// SimulcastTrack is a video track published in three encodings of the same
// picture (simulcast). The server forwards each subscriber the layer that
// fits its network and screen, and tells the publisher to pause a layer
// nobody needs (dynacast): WriteSample then drops that layer's frames until
// it is needed again, which is what an encoder should do too.
type SimulcastTrack struct {
	refusal
	source    string
	codec     webrtc.RTPCodecCapability
	layers    [3]*webrtc.TrackLocalStaticRTP
	keyframes [3]chan struct{}
	paused    [3]atomic.Bool

	mu      sync.Mutex
	onPause func(layer int, paused bool)
	// Pion does not stamp the mid and rid header extensions on simulcast
	// packets, and a receiver needs them to tell the layers apart: each
	// layer is packetized here and stamped (WriteSample).
	sender     *webrtc.RTPSender
	pc         *webrtc.PeerConnection
	packetizer [3]rtp.Packetizer
	writeMu    [3]sync.Mutex
}

// PublishSimulcast adds a video track in the three layers of SimulcastRIDs.
// Write each layer's frames with WriteSample. Its source and a refusal are
// handled as by PublishTrack.
func (r *Room) PublishSimulcast(codec webrtc.RTPCodecCapability, source string) (*SimulcastTrack, error) {
	if codec.MimeType != webrtc.MimeTypeVP8 {
		return nil, fmt.Errorf("publish simulcast: only VP8, not %s", codec.MimeType)
	}
	st := &SimulcastTrack{source: source, codec: codec}
	for i := range st.keyframes {
		st.keyframes[i] = make(chan struct{}, 1)
	}
	err := r.publish(codec, source, func(id, stream string) (published, error) {
		for i, rid := range SimulcastRIDs {
			tr, err := webrtc.NewTrackLocalStaticRTP(codec, id, stream, webrtc.WithRTPStreamID(rid))
			if err != nil {
				return nil, fmt.Errorf("layer %s: %w", rid, err)
			}
			st.layers[i] = tr
			st.packetizer[i] = rtp.NewPacketizer(1200, 0, 0, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), codec.ClockRate)
		}
		return st, nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (t *SimulcastTrack) trackLocal() webrtc.TrackLocal { return t.layers[0] }

// addEncodings adds the layers above the first to the sender, before the
// offer that announces them.
func (t *SimulcastTrack) addEncodings(pc *webrtc.PeerConnection, sender *webrtc.RTPSender) error {
	t.mu.Lock()
	t.sender, t.pc = sender, pc
	t.mu.Unlock()
	for _, l := range t.layers[1:] {
		if err := sender.AddEncoding(l); err != nil {
			return fmt.Errorf("simulcast layer %s: %w", l.RID(), err)
		}
	}
	return nil
}

// readRTCP drains each layer's feedback and passes keyframe requests on
// to the layer they name.
func (t *SimulcastTrack) readRTCP(sender *webrtc.RTPSender) {
	var wg sync.WaitGroup
	for i, rid := range SimulcastRIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				pkts, _, err := sender.ReadSimulcastRTCP(rid)
				if err != nil {
					return
				}
				for _, p := range pkts {
					switch p.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						select {
						case t.keyframes[i] <- struct{}{}:
						default:
						}
					}
				}
			}
		}()
	}
	wg.Wait()
}

// ID is the track's id, the same for all its layers.
func (t *SimulcastTrack) ID() string { return t.layers[0].ID() }

// KeyframeRequests delivers a value whenever the server asks for a
// keyframe of one layer (0: q, 1: h, 2: f).
func (t *SimulcastTrack) KeyframeRequests(layer int) <-chan struct{} { return t.keyframes[layer] }

// WriteSample sends one encoded frame of a layer. Frames of a layer the
// server paused are dropped (and nil returned): nobody would receive them.
// It returns Err if the server refused the track.
func (t *SimulcastTrack) WriteSample(layer int, s media.Sample) error {
	if err := t.Err(); err != nil {
		return err
	}
	if layer < 0 || layer >= len(t.layers) {
		return fmt.Errorf("simulcast layer %d: want 0 to %d", layer, len(t.layers)-1)
	}
	if t.paused[layer].Load() {
		return nil
	}
	mid, midID, ridID := t.extensions()
	t.writeMu[layer].Lock()
	defer t.writeMu[layer].Unlock()
	samples := uint32(s.Duration.Seconds() * float64(t.codec.ClockRate))
	for _, p := range t.packetizer[layer].Packetize(s.Data, samples) {
		if midID != 0 && mid != "" {
			_ = p.Header.SetExtension(midID, []byte(mid))
		}
		if ridID != 0 {
			_ = p.Header.SetExtension(ridID, []byte(SimulcastRIDs[layer]))
		}
		if err := t.layers[layer].WriteRTP(p); err != nil {
			return err
		}
	}
	return nil
}

// extensions are the negotiated mid of the track's transceiver and the
// ids of the mid and rid header extensions ("" and 0 until negotiated).
func (t *SimulcastTrack) extensions() (mid string, midID, ridID uint8) {
	t.mu.Lock()
	sender, pc := t.sender, t.pc
	t.mu.Unlock()
	if sender == nil {
		return "", 0, 0
	}
	for _, x := range sender.GetParameters().HeaderExtensions {
		switch x.URI {
		case sdp.SDESMidURI:
			midID = uint8(x.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(x.ID)
		}
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == sender {
			mid = tr.Mid()
		}
	}
	return mid, midID, ridID
}

// LayerActive reports whether the server wants a layer encoded now.
func (t *SimulcastTrack) LayerActive(layer int) bool {
	return layer >= 0 && layer < len(t.layers) && !t.paused[layer].Load()
}

// OnLayerChange is told when the server pauses or resumes a layer; an
// encoder stops or restarts that encoding there. A resumed layer must
// start with a keyframe, which the server also asks for.
func (t *SimulcastTrack) OnLayerChange(f func(layer int, paused bool)) {
	t.mu.Lock()
	t.onPause = f
	t.mu.Unlock()
}

// setPaused applies the server's dynacast request for one layer.
func (t *SimulcastTrack) setPaused(layer int, paused bool) {
	if layer < 0 || layer >= len(t.layers) || t.paused[layer].Swap(paused) == paused {
		return
	}
	if !paused {
		select {
		case t.keyframes[layer] <- struct{}{}:
		default:
		}
	}
	t.mu.Lock()
	f := t.onPause
	t.mu.Unlock()
	if f != nil {
		f(layer, paused)
	}
}
