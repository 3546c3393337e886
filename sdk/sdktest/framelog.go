package sdktest

import (
	"fmt"
	"strings"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/huddle-rtc/huddle/sdk"
)

// FrameLog records the counters a bot receives, per codec (lower-case MIME
// type), in arrival order after reordering.
type FrameLog struct {
	mu       sync.Mutex
	counters map[string][]uint32
}

// NewFrameLog makes an empty log; pass its OnTrack to sdk.Join.
func NewFrameLog() *FrameLog { return &FrameLog{counters: map[string][]uint32{}} }

// OnTrack reads a track until it ends, logging each frame's counter.
func (l *FrameLog) OnTrack(t *sdk.RemoteTrack) {
	mime := strings.ToLower(t.Track.Codec().MimeType)
	var depacketizer rtp.Depacketizer
	clock := uint32(90000)
	switch mime {
	case "video/vp8":
		depacketizer = &codecs.VP8Packet{}
	case "video/h264":
		depacketizer = &codecs.H264Packet{}
	case "audio/opus":
		depacketizer, clock = &codecs.OpusPacket{}, 48000
	default:
		depacketizer = &codecs.VP8Packet{}
	}
	sb := samplebuilder.New(128, depacketizer, clock)
	for {
		p, _, err := t.Track.ReadRTP()
		if err != nil {
			return
		}
		sb.Push(p)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			if n, ok := Counter(mime, s.Data); ok {
				l.mu.Lock()
				l.counters[mime] = append(l.counters[mime], n)
				l.mu.Unlock()
			}
		}
	}
}

// Count is how many frames of a codec arrived.
func (l *FrameLog) Count(mime string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.counters[strings.ToLower(mime)])
}

// Counters is a copy of a codec's counters.
func (l *FrameLog) Counters(mime string) []uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uint32(nil), l.counters[strings.ToLower(mime)]...)
}

// String summarises the log, for failure messages.
func (l *FrameLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for k, v := range l.counters {
		parts = append(parts, fmt.Sprintf("%s=%d", k, len(v)))
	}
	return strings.Join(parts, " ")
}

// InOrder returns an error unless each counter is one more than the one
// before it.
func InOrder(c []uint32) error {
	for i := 1; i < len(c); i++ {
		if c[i] != c[i-1]+1 {
			return fmt.Errorf("counters out of order or lost at %d: ...%v", i, c[max(0, i-3):min(len(c), i+3)])
		}
	}
	return nil
}
