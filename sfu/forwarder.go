package sfu

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TrackInfo describes a published track to the rest of the server.
type TrackInfo struct {
	ID          string // server-chosen, unique in the room
	PublisherID string // the participant who publishes it
	Kind        string // "audio" or "video"
	Source      string // "camera", "microphone", "screen" or "unknown"
	Codec       string // MIME type, e.g. "video/VP8"
	ClientID    string // the publisher's own track id (msid), for mute requests that name it
}

// keyframeInterval bounds how often one track asks its publisher for a
// keyframe, however many subscribers join or lose packets at once.
const keyframeInterval = 500 * time.Millisecond

// packet is one received RTP packet. The forwarder fills it once and every
// downtrack reads it; nobody writes to it after it is shared.
type packet struct {
	header   rtp.Header
	payload  []byte
	keyframe bool
}

// Forwarder reads one published track and hands every packet to each of its
// downtracks. It never waits for a downtrack: each has its own queue.
type Forwarder struct {
	info     TrackInfo
	codec    webrtc.RTPCodecCapability
	kind     webrtc.RTPCodecType
	ssrc     uint32
	remote   *webrtc.TrackRemote
	receiver *webrtc.RTPReceiver
	writePLI func(ssrc uint32) error
	log      *slog.Logger
	meter    *trackMeter // audio level and uplink quality (quality.go); may be nil

	mu    sync.Mutex                   // serialises changes to downs
	downs atomic.Pointer[[]*DownTrack] // read on every packet without a lock

	lastKeyframeReq  atomic.Int64 // unix nanos of the last PLI sent upstream
	keyframeDeferred atomic.Bool  // a request waits for the interval to end
	packets          atomic.Uint64
	malformed        atomic.Uint64
	done             chan struct{}
}

func newForwarder(info TrackInfo, remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver, writePLI func(uint32) error, log *slog.Logger) *Forwarder {
	f := &Forwarder{
		info:     info,
		codec:    remote.Codec().RTPCodecCapability,
		kind:     remote.Kind(),
		ssrc:     uint32(remote.SSRC()),
		remote:   remote,
		receiver: receiver,
		writePLI: writePLI,
		log:      log.With("track", info.ID, "publisher", info.PublisherID, "codec", info.Codec),
		done:     make(chan struct{}),
	}
	f.downs.Store(&[]*DownTrack{})
	return f
}

// Info describes the track.
func (f *Forwarder) Info() TrackInfo { return f.info }

// Done is closed when the track has ended.
func (f *Forwarder) Done() <-chan struct{} { return f.done }

// run reads the track until it ends. Every remote track must be read, or
// Pion's buffer fills and packets drop, so run starts as soon as the track does.
func (f *Forwarder) run() {
	defer close(f.done)
	go f.drainRTCP()
	video := f.kind == webrtc.RTPCodecTypeVideo
	buf := make([]byte, 1600)
	for {
		n, _, err := f.remote.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				f.log.Debug("track read ended", "err", err)
			}
			return
		}
		p, err := parsePacket(buf[:n], f.info.Codec, video)
		if err != nil {
			f.badPacket(err)
			continue
		}
		f.packets.Add(1)
		f.meter.observe(&p.header) // hook: levels to the speaker detector, arrivals to the quality scorer
		for _, d := range *f.downs.Load() {
			d.enqueue(p)
		}
	}
}

// parsePacket copies one RTP packet out of the read buffer and parses it:
// one allocation per packet, shared by every downtrack.
func parsePacket(raw []byte, codec string, video bool) (*packet, error) {
	data := make([]byte, len(raw))
	copy(data, raw)
	p := &packet{}
	hl, err := p.header.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("rtp header: %w", err)
	}
	if p.header.Version != 2 {
		return nil, fmt.Errorf("rtp version %d", p.header.Version)
	}
	end := len(data)
	if p.header.Padding {
		pad := int(data[end-1])
		if pad == 0 || pad > end-hl {
			return nil, fmt.Errorf("rtp padding of %d bytes in a %d-byte packet", pad, end)
		}
		end -= pad
	}
	p.payload = data[hl:end]
	if video {
		p.keyframe = isKeyframe(codec, p.payload)
	}
	return p, nil
}

func (f *Forwarder) badPacket(err error) {
	// Logged at most once per thousand so a broken sender cannot flood the log.
	if f.malformed.Add(1)%1000 == 1 {
		f.log.Warn("dropping malformed rtp", "err", err, "count", f.malformed.Load())
	}
}

// drainRTCP reads the receiver's RTCP so that the interceptors (reports,
// stats) see it; nothing here needs the packets themselves.
func (f *Forwarder) drainRTCP() {
	buf := make([]byte, 1500)
	for {
		if _, _, err := f.receiver.Read(buf); err != nil {
			return
		}
	}
}

// RequestKeyframe asks the publisher for a keyframe, at most once per
// keyframeInterval. A request inside the interval is not lost: it is sent
// when the interval ends, since the subscriber asking may have missed the
// keyframe the previous request brought.
func (f *Forwarder) RequestKeyframe() {
	if f.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	now := time.Now().UnixNano()
	last := f.lastKeyframeReq.Load()
	if wait := last + int64(keyframeInterval) - now; wait > 0 {
		if f.keyframeDeferred.CompareAndSwap(false, true) {
			time.AfterFunc(time.Duration(wait), func() {
				f.keyframeDeferred.Store(false)
				f.RequestKeyframe()
			})
		}
		return
	}
	if !f.lastKeyframeReq.CompareAndSwap(last, now) {
		return
	}
	select {
	case <-f.done:
		return
	default:
	}
	if err := f.writePLI(f.ssrc); err != nil {
		f.log.Debug("pli upstream failed", "err", err)
	}
}

func (f *Forwarder) addDownTrack(d *DownTrack) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.downs.Load()
	next := make([]*DownTrack, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, d)
	f.downs.Store(&next)
}

func (f *Forwarder) removeDownTrack(d *DownTrack) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.downs.Load()
	next := make([]*DownTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	f.downs.Store(&next)
}

// pliPacket builds the RTCP a forwarder sends upstream.
func pliPacket(ssrc uint32) []rtcp.Packet {
	return []rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}
}
