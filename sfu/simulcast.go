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

	lastKeyframeReq  atomic.Int64 // unix nanos of the last PLI sent upstream
	keyframeDeferred atomic.Bool  // a request waits for the interval to end
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
