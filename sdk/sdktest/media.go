package sdktest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/huddle-rtc/huddle/sdk"
)

// FrameInterval is the synthetic media's frame (and audio packet) length.
const FrameInterval = 20 * time.Millisecond

// counterAt is where VP8 and Opus frames keep their counter; the SFU reads
// only the VP8 frame tag before it.
const counterAt = 10

// VP8Frame is a one-packet VP8 frame with counter n.
func VP8Frame(n uint32, key bool) []byte {
	f := make([]byte, 900)
	f[0] = 0x11 // interframe, shown
	if key {
		f[0] = 0x10
		copy(f[3:], []byte{0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}) // start code, 320x240
	}
	binary.BigEndian.PutUint32(f[counterAt:], n)
	return f
}

// OpusFrame is a 20 ms Opus packet (by its TOC byte) with counter n.
func OpusFrame(n uint32) []byte {
	f := make([]byte, 40)
	f[0] = 0x78 // hybrid fullband, 20 ms, one frame
	binary.BigEndian.PutUint32(f[counterAt:], n)
	return f
}

var startCode = []byte{0, 0, 0, 1}

// H264Frame is an Annex B access unit: SPS, PPS and an IDR slice when key,
// else one non-IDR slice. The slice starts as a picture's first slice does
// (first_mb_in_slice 0: its first bit set), then holds "CTR" and the
// counter as eight ASCII digits, which no start code can hide in.
func H264Frame(n uint32, key bool) []byte {
	var f bytes.Buffer
	slice := append([]byte{0x41, 0x88}, fmt.Sprintf("CTR%08d", n)...)
	if key {
		f.Write(startCode)
		f.Write([]byte{0x67, 0x42, 0xe0, 0x1f, 0xda, 0x02, 0x80})
		f.Write(startCode)
		f.Write([]byte{0x68, 0xce, 0x3c, 0x80})
		slice[0] = 0x65
	}
	f.Write(startCode)
	f.Write(slice)
	f.Write(bytes.Repeat([]byte{0xaa}, 600))
	return f.Bytes()
}

// Counter reads the counter out of a frame of the given codec (an H.264
// frame may be Annex B or a single slice NAL).
func Counter(mime string, frame []byte) (n uint32, ok bool) {
	if strings.EqualFold(mime, webrtc.MimeTypeH264) {
		i := bytes.Index(frame, []byte("CTR"))
		if i < 0 || len(frame) < i+11 {
			return 0, false
		}
		v, err := strconv.Atoi(string(frame[i+3 : i+11]))
		return uint32(v), err == nil
	}
	if len(frame) < counterAt+4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(frame[counterAt:]), true
}

// Publisher sends synthetic frames on a room's tracks every FrameInterval.
type Publisher struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Publish starts one track per codec (VP8, H264 or Opus), each frame
// carrying the same counter, answering keyframe requests with a keyframe.
// Stop ends it.
func Publish(room *sdk.Room, codecs ...webrtc.RTPCodecCapability) (*Publisher, error) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{cancel: cancel}
	for _, c := range codecs {
		source := "camera"
		if c.MimeType == webrtc.MimeTypeOpus {
			source = "microphone"
		}
		tr, err := room.PublishTrack(c, source)
		if err != nil {
			p.Stop()
			return nil, err
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			send(ctx, tr, c.MimeType)
		}()
	}
	return p, nil
}

func send(ctx context.Context, tr *sdk.LocalTrack, mime string) {
	tick := time.NewTicker(FrameInterval)
	defer tick.Stop()
	key := true
	for n := uint32(0); ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tr.KeyframeRequests():
			key = true
		case <-tick.C:
		}
		var f []byte
		switch mime {
		case webrtc.MimeTypeVP8:
			f = VP8Frame(n, key)
		case webrtc.MimeTypeH264:
			f = H264Frame(n, key)
		default:
			f = OpusFrame(n)
		}
		if tr.WriteSample(media.Sample{Data: f, Duration: FrameInterval}) != nil {
			return
		}
		key = false
	}
}

// Stop ends the tracks' senders and waits for them.
func (p *Publisher) Stop() {
	p.cancel()
	p.wg.Wait()
}
