package sfu

import "sync"

// maxPacketSize is the largest RTP packet the SFU accepts: the receive MTU
// set on the Pion API.
const maxPacketSize = 1600

// Cache sizes, in packets (powers of two). A video track at 1 Mbit/s sends
// about 100 packets/s, a 4 Mbit/s screen share about 400, so 512 keeps at
// least a second for NACKs and for a subscriber queue that lags. Audio is
// never retransmitted; its cache only needs to outlast the send queue.
const (
	videoCacheSize = 512
	audioCacheSize = 128
)

// cachedPacket is one slot of a packet cache. The bytes live inside the
// slot, so storing a packet allocates nothing.
type cachedPacket struct {
	seq      uint16
	size     uint16 // 0: empty
	keyframe bool
	at       int64 // when the forwarder read it (unix nanos), for the forward delay
	rx       int64 // when it reached the server's socket (rxstamp.go), for the server delay
	buf      [maxPacketSize]byte
}

// packetCache is the history of one published track: every received packet
// is stored once, indexed by sequence number modulo the capacity, and every
// subscriber's send path copies what it sends out of it, first sends and
// retransmissions alike. Subscribers share one history instead of each
// keeping a copy of every packet.
type packetCache struct {
	mu      sync.Mutex
	mask    uint16
	entries []cachedPacket
}

func newPacketCache(size int) *packetCache {
	if size&(size-1) != 0 || size <= 0 || size > 1<<15 {
		panic("packet cache size must be a power of two up to 32768")
	}
	return &packetCache{mask: uint16(size - 1), entries: make([]cachedPacket, size)}
}

// store keeps a packet that reached the socket at rx and the forwarder at
// at, replacing whatever held its slot.
func (c *packetCache) store(seq uint16, raw []byte, keyframe bool, at, rx int64) {
	c.mu.Lock()
	e := &c.entries[seq&c.mask]
	e.seq, e.size, e.keyframe, e.at, e.rx = seq, uint16(copy(e.buf[:], raw)), keyframe, at, rx
	c.mu.Unlock()
}

// load copies packet seq into dst. It reports false when the packet never
// arrived or its slot has since been reused by a newer one.
func (c *packetCache) load(seq uint16, dst []byte) (n int, keyframe, ok bool) {
	n, keyframe, _, _, ok = c.loadAt(seq, dst)
	return n, keyframe, ok
}

// loadAt is load that also tells when the packet was read (at) and when it
// reached the socket (rx).
func (c *packetCache) loadAt(seq uint16, dst []byte) (n int, keyframe bool, at, rx int64, ok bool) {
	c.mu.Lock()
	e := &c.entries[seq&c.mask]
	if e.size == 0 || e.seq != seq {
		c.mu.Unlock()
		return 0, false, 0, 0, false
	}
	n = copy(dst, e.buf[:e.size])
	keyframe, at, rx = e.keyframe, e.at, e.rx
	c.mu.Unlock()
	return n, keyframe, at, rx, true
}
