package sfu

import (
	"errors"
	"io"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// maxLayers is how many spatial simulcast layers a track can have: rids q, h
// and f (about 1/4, 1/2 and full resolution), lowest first.
const maxLayers = 3

// layerIndex maps a simulcast rid to its spatial layer. Tracks without
// simulcast have one layer, 0. Other rids take the first free index.
func layerIndex(rid string) int {
	switch rid {
	case "", "q", "0", "l":
		return 0
	case "h", "1", "m":
		return 1
	case "f", "2":
		return 2
	}
	return -1
}

// simLayer is one received encoding of a published track: its own SSRC,
// sequence numbers, timestamps and packet cache.
type simLayer struct {
	index  int
	rid    string
	remote *webrtc.TrackRemote // nil in unit tests
	ssrc   uint32
	cache  *packetCache

	bytes            atomic.Uint64 // received, for the allocator's rates
	lastKey          atomic.Uint32 // 1<<16 | seq of the newest keyframe's first packet; 0: none
	paused           atomic.Bool   // the publisher was told to stop it (dynacast)
	width, height    atomic.Int32  // from its last VP8 keyframe; 0: unknown
	lastKeyframeReq  atomic.Int64  // unix nanos of the last PLI sent upstream
	keyframeDeferred atomic.Bool   // a request waits for the interval to end
	packets          atomic.Uint64
}

func newSimLayer(index int, rid string, remote *webrtc.TrackRemote, ssrc uint32, kind webrtc.RTPCodecType) *simLayer {
	return &simLayer{index: index, rid: rid, remote: remote, ssrc: ssrc, cache: newPacketCache(cacheSize(kind))}
}

// layer returns spatial layer i, or nil when the publisher sends no such layer.
func (f *Forwarder) layer(i int8) *simLayer {
	if i < 0 || int(i) >= maxLayers {
		return nil
	}
	return f.layers[i].Load()
}

// attach adds a received layer; it reports false when its slot is taken
// (a duplicate rid, or more layers than maxLayers).
func (f *Forwarder) attach(l *simLayer) bool {
	f.mu.Lock()
	if l.index < 0 {
		for i := range maxLayers {
			if f.layers[i].Load() == nil {
				l.index = i
				break
			}
		}
	}
	ok := l.index >= 0 && f.layers[l.index].CompareAndSwap(nil, l)
	downs := *f.downs.Load()
	f.mu.Unlock()
	if ok {
		for _, d := range downs {
			d.retarget()
		}
	}
	return ok
}

// Layers reports how many spatial layers the track has now.
func (f *Forwarder) Layers() int {
	n := 0
	for i := range maxLayers {
		if f.layers[i].Load() != nil {
			n++
		}
	}
	return n
}

// pickLayer is the highest layer present at or below max; the lowest
// present when none is (a subscriber that wants little still gets video).
func (f *Forwarder) pickLayer(max int8) int8 {
	for i := min(max, maxLayers-1); i >= 0; i-- {
		if f.layers[i].Load() != nil {
			return i
		}
	}
	for i := int8(0); i < maxLayers; i++ {
		if f.layers[i].Load() != nil {
			return i
		}
	}
	return 0
}

// runLayer reads one layer other than the first until it ends; the first
// layer's reader (run) owns the track's life.
func (f *Forwarder) runLayer(l *simLayer) {
	buf := make([]byte, maxPacketSize)
	var p packet
	for {
		n, _, err := l.remote.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				f.log.Debug("layer read ended", "rid", l.rid, "err", err)
			}
			return
		}
		f.ingest(l, &p, buf[:n])
	}
}

// vp8Descriptor finds the picture id and TL0PICIDX in a VP8 payload
// descriptor (RFC 7741 section 4.2): their offsets (-1: absent) and
// whether the picture id has 15 bits.
func vp8Descriptor(p []byte) (pid, tl0 int, long bool) {
	pid, tl0 = -1, -1
	if len(p) < 2 || p[0]&0x80 == 0 {
		return
	}
	ext, i := p[1], 2
	if ext&0x80 != 0 {
		if len(p) <= i {
			return -1, -1, false
		}
		pid, long = i, p[i]&0x80 != 0
		i++
		if long {
			i++
		}
	}
	if ext&0x40 != 0 && len(p) > i {
		tl0 = i
	}
	if long && len(p) <= pid+1 {
		return -1, -1, false
	}
	return
}

func vp8PictureID(p []byte, at int, long bool) uint16 {
	if long {
		return uint16(p[at]&0x7f)<<8 | uint16(p[at+1])
	}
	return uint16(p[at] & 0x7f)
}

func putVP8PictureID(p []byte, at int, long bool, v uint16) {
	if long {
		p[at], p[at+1] = 0x80|byte(v>>8)&0x7f, byte(v)
		return
	}
	p[at] = byte(v) & 0x7f
}

// vp8Size reads the frame size of a VP8 keyframe's first packet (RFC 6386
// section 9.1: start code 9d 01 2a, then 14-bit width and height).
func vp8Size(p []byte) (w, h int32, ok bool) {
	if len(p) < 1 {
		return 0, 0, false
	}
	i := 1
	if p[0]&0x80 != 0 {
		if len(p) < 2 {
			return 0, 0, false
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 {
			if len(p) <= i {
				return 0, 0, false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if ext&0x40 != 0 {
			i++
		}
		if ext&0x30 != 0 {
			i++
		}
	}
	if len(p) < i+10 {
		return 0, 0, false
	}
	f := p[i:]
	if f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return 0, 0, false
	}
	return int32(f[6]) | int32(f[7]&0x3f)<<8, int32(f[8]) | int32(f[9]&0x3f)<<8, true
}

// maxCatchUp bounds a catch-up: how many cached packets, from the layer's
// newest keyframe on, a downtrack may send at once instead of asking the
// publisher for a new keyframe (about a second of a 1 Mbit/s layer).
const maxCatchUp = 128

// noteKeyframe remembers where the newest keyframe starts.
func (l *simLayer) noteKeyframe(seq uint16) {
	old := l.lastKey.Load()
	if old == 0 || int16(seq-uint16(old)) > 0 {
		l.lastKey.Store(1<<16 | uint32(seq))
	}
}

// catchUp starts (or restarts) this downtrack on a layer without a new
// keyframe: when the layer's newest keyframe and what followed it are
// still in the track's cache, they are sent now, from the keyframe up to
// in, the packet at hand. So a subscriber that resumes, switches layer or
// lost packets in its own queue costs the publisher, and every other
// subscriber, no keyframe. It reports whether the run started.
func (d *DownTrack) catchUp(l *simLayer, in uint16) bool {
	if l == nil || d.catching {
		return false
	}
	k := l.lastKey.Load()
	start := uint16(k)
	if k == 0 || in == start || in-start > maxCatchUp || int16(in-start) < 0 {
		return false
	}
	if d.started && int8(d.cur.Load()) == int8(l.index) && int16(start-d.lastIn) <= 0 {
		return false // that keyframe's run was already sent (partly)
	}
	buf, p := &d.path.catchBuf, &d.path.catchPkt
	n, key, ok := l.cache.load(start, buf[:])
	if !ok || !key || parseCached(p, buf[:n], key) != nil {
		return false
	}
	d.catching = true
	defer func() { d.catching = false }()
	if !d.send(p, int8(l.index)) {
		return false
	}
	for s := start + 1; s != in; s++ {
		n, key, ok := l.cache.load(s, buf[:])
		if !ok || parseCached(p, buf[:n], key) != nil {
			continue // lost upstream: the subscriber NACKs the hole
		}
		d.send(p, int8(l.index))
	}
	d.path.caughtUp.Add(1)
	return true
}

// parseCached parses a packet copied out of a cache (stored only if it parsed).
func parseCached(p *packet, raw []byte, key bool) error {
	hl, err := p.header.Unmarshal(raw)
	if err != nil {
		return err
	}
	end := len(raw)
	if p.header.Padding {
		end -= int(raw[end-1])
	}
	p.payload = raw[hl:end]
	p.keyframe = key
	return nil
}
