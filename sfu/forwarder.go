package sfu

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
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

// packet is a parsed view of one RTP packet held in a buffer its parser
// owns: the forwarder's read buffer, or a send path's copy from the cache.
type packet struct {
	header   rtp.Header
	payload  []byte
	keyframe bool
}

// Forwarder reads one published track into its packet cache and tells each
// of its downtracks' send paths which slot to send. It never waits for a
// subscriber: send paths only queue.
type Forwarder struct {
	info     TrackInfo
	codec    webrtc.RTPCodecCapability
	kind     webrtc.RTPCodecType
	remote   *webrtc.TrackRemote // the first layer's
	receiver *webrtc.RTPReceiver
	writePLI func(ssrc uint32) error
	log      *slog.Logger
	base     *simLayer // the first layer received; its end is the track's
	layers   [maxLayers]atomic.Pointer[simLayer]
	ext      extIDs                      // the publisher's header extension ids
	local    *webrtc.TrackLocalStaticRTP // Config.Baseline only
	meter    *trackMeter                 // audio level and uplink quality (quality.go); may be nil
	paused   atomic.Bool                 // muted by an admin: read, but forwarded to nobody (admin.go)
	room     *Room                       // for the allocator's events; nil in unit tests

	mu    sync.Mutex                   // serialises changes to downs
	downs atomic.Pointer[[]*DownTrack] // read on every packet without a lock

	packets   atomic.Uint64
	bytes     atomic.Uint64 // received, all layers, for the admin API's bitrates
	malformed atomic.Uint64
	done      chan struct{}
}

func newForwarder(info TrackInfo, remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver, writePLI func(uint32) error, log *slog.Logger) *Forwarder {
	f := &Forwarder{
		info:     info,
		codec:    remote.Codec().RTPCodecCapability,
		kind:     remote.Kind(),
		remote:   remote,
		receiver: receiver,
		writePLI: writePLI,
		log:      log.With("track", info.ID, "publisher", info.PublisherID, "codec", info.Codec),
		done:     make(chan struct{}),
	}
	if receiver != nil {
		f.ext = extIDsOf(receiver.GetParameters().HeaderExtensions)
	}
	f.downs.Store(&[]*DownTrack{})
	f.base = newSimLayer(layerIndex(remote.RID()), remote.RID(), remote, uint32(remote.SSRC()), remote.Kind())
	f.attach(f.base)
	return f
}

// Info describes the track.
func (f *Forwarder) Info() TrackInfo { return f.info }

// Done is closed when the track has ended.
func (f *Forwarder) Done() <-chan struct{} { return f.done }

func cacheSize(kind webrtc.RTPCodecType) int {
	if kind == webrtc.RTPCodecTypeVideo {
		return videoCacheSize
	}
	return audioCacheSize
}

// run reads the track until it ends. Every remote track must be read, or
// Pion's buffer fills and packets drop, so run starts as soon as the track
// does. Its caller waits for it (Room.publish).
func (f *Forwarder) run() {
	defer close(f.done)
	buf := make([]byte, maxPacketSize)
	var p packet
	for {
		n, _, err := f.remote.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				f.log.Debug("track read ended", "err", err)
			}
			return
		}
		f.ingest(f.base, &p, buf[:n])
	}
}

// ingest is where every received packet of a published track passes: it is
// parsed once, stored once in the track's cache, and each subscriber's send
// path is told its sequence number. Nothing here allocates.
func (f *Forwarder) ingest(l *simLayer, p *packet, raw []byte) {
	video := f.kind == webrtc.RTPCodecTypeVideo
	if err := parseInto(p, raw, f.info.Codec, video); err != nil {
		f.badPacket(err)
		return
	}
	f.packets.Add(1)
	f.bytes.Add(uint64(len(raw)))
	l.packets.Add(1)
	l.bytes.Add(uint64(len(raw)))
	if f.room != nil {
		f.room.engine.metrics.layers[l.index].Add(1)
	}
	if p.keyframe && l.height.Load() == 0 && strings.EqualFold(f.info.Codec, webrtc.MimeTypeVP8) {
		if w, h, ok := vp8Size(p.payload); ok {
			l.width.Store(w)
			l.height.Store(h)
		}
	}
	if l == f.base {
		f.meter.observe(&p.header) // levels to the speaker detector, arrivals to the quality scorer
	}
	if f.paused.Load() { // muted by an admin (admin.go)
		return
	}
	if f.local != nil {
		f.forwardBaseline(raw)
		return
	}
	seq := p.header.SequenceNumber
	now := time.Now().UnixNano()
	rx := now // without the socket's stamp, the server delay starts here
	if f.room != nil {
		if at, ok := f.room.engine.gso.arrival(p.header.SSRC, seq); ok && at <= now {
			rx = at
		}
	}
	l.cache.store(seq, raw, p.keyframe, now, rx)
	if p.keyframe {
		l.noteKeyframe(seq)
	}
	layer := int8(l.index)
	for _, d := range *f.downs.Load() {
		// Only the layer a subscriber gets, and the one it switches to,
		// reach its queue.
		if d.accepts(layer) {
			d.path.push(sendItem{d: d, seq: seq, layer: layer}, !video)
		}
	}
}

// parseInto parses one RTP packet into p without copying: p's payload
// points into raw.
func parseInto(p *packet, raw []byte, codec string, video bool) error {
	hl, err := p.header.Unmarshal(raw)
	if err != nil {
		return fmt.Errorf("rtp header: %w", err)
	}
	if p.header.Version != 2 {
		return fmt.Errorf("rtp version %d", p.header.Version)
	}
	end := len(raw)
	if p.header.Padding {
		pad := int(raw[end-1])
		if pad == 0 || pad > end-hl {
			return fmt.Errorf("rtp padding of %d bytes in a %d-byte packet", pad, end)
		}
		end -= pad
	}
	p.payload = raw[hl:end]
	p.keyframe = video && isKeyframe(codec, p.payload)
	return nil
}

func (f *Forwarder) badPacket(err error) {
	// Logged at most once per thousand so a broken sender cannot flood the log.
	if f.malformed.Add(1)%1000 == 1 {
		f.log.Warn("dropping malformed rtp", "err", err, "count", f.malformed.Load())
	}
}

// drainRTCP reads the receiver's RTCP for one layer (rid, "" without
// simulcast) so that the interceptors (reports) see it; nothing here needs
// the packets themselves. A simulcast receiver must be read per rid: its
// plain Read uses the first layer's stream, which another layer's arrival
// may still be setting up (a data race, or a nil stream).
func (f *Forwarder) drainRTCP(rid string) {
	buf := make([]byte, 1500)
	for {
		var err error
		if rid == "" {
			_, _, err = f.receiver.Read(buf)
		} else {
			_, _, err = f.receiver.ReadSimulcast(buf, rid)
		}
		if err != nil {
			return
		}
	}
}

// RequestKeyframe asks the publisher for a keyframe on every layer, for an
// admin (a resumed track).
func (f *Forwarder) RequestKeyframe() { f.requestKeyframes(kfAdmin) }

func (f *Forwarder) requestKeyframes(why keyframeReason) {
	for i := range int8(maxLayers) {
		if l := f.layer(i); l != nil {
			f.requestKeyframe(l, why)
		}
	}
}

// keyframeReason says why the SFU asked a publisher for a keyframe: the
// reason label of huddle_media_keyframe_requests_sent_total, so that an
// operator can tell a bad subscriber link (recovery) from churn (start,
// switch).
type keyframeReason uint8

const (
	kfSubscriber keyframeReason = iota // a subscriber's PLI or FIR
	kfStart                            // a subscriber starts receiving the track
	kfSwitch                           // a subscriber's downtrack changes layer
	kfRecovery                         // a subscriber resynchronises: its loss, a full queue, a resume
	kfAdmin                            // an admin resumed the track
	numKeyframeReasons
)

var keyframeReasonNames = [numKeyframeReasons]string{"subscriber", "start", "switch", "recovery", "admin"}

// requestKeyframe asks the publisher for a keyframe of one layer, at most
// once per keyframeInterval. A request inside the interval is not lost: it
// is sent when the interval ends, since the subscriber asking may have
// missed the keyframe the previous request brought.
// The request sent after a wait counts under the reason that started the
// wait.
func (f *Forwarder) requestKeyframe(l *simLayer, why keyframeReason) {
	if f.kind != webrtc.RTPCodecTypeVideo || l == nil {
		return
	}
	now := time.Now().UnixNano()
	last := l.lastKeyframeReq.Load()
	if wait := last + int64(keyframeInterval) - now; wait > 0 {
		if l.keyframeDeferred.CompareAndSwap(false, true) {
			time.AfterFunc(time.Duration(wait), func() {
				l.keyframeDeferred.Store(false)
				f.requestKeyframe(l, why)
			})
		}
		return
	}
	if !l.lastKeyframeReq.CompareAndSwap(last, now) {
		return
	}
	select {
	case <-f.done:
		return
	default:
	}
	if err := f.writePLI(l.ssrc); err != nil {
		f.log.Debug("pli upstream failed", "err", err)
		return
	}
	if f.room != nil {
		f.room.engine.metrics.keyframesSent[why].Add(1)
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
	// Layers attached since d was made (its target picked from fewer)
	// retargeted only the downtracks listed then: pick again, under the
	// lock attach takes, so that no layer is missed.
	d.retarget()
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
