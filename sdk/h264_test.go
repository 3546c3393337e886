package sdk_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
)

// Synthetic H.264 in Annex B: a keyframe is SPS + PPS + IDR slice, a delta
// frame one non-IDR slice. Each slice carries "CTR" and an 8-digit counter
// (ASCII, so no byte pattern can look like a start code).
var startCode = []byte{0, 0, 0, 1}

func h264Frame(n uint32, key bool) []byte {
	var f bytes.Buffer
	slice := append([]byte{0x41}, fmt.Sprintf("CTR%08d", n)...)
	if key {
		f.Write(startCode)
		f.Write([]byte{0x67, 0x42, 0xe0, 0x1f, 0xda, 0x02, 0x80}) // SPS
		f.Write(startCode)
		f.Write([]byte{0x68, 0xce, 0x3c, 0x80}) // PPS
		slice[0] = 0x65                         // IDR
	}
	f.Write(startCode)
	f.Write(slice)
	f.Write(bytes.Repeat([]byte{0xaa}, 600))
	return f.Bytes()
}

func h264Counter(f []byte) (uint32, bool, bool) {
	i := bytes.Index(f, []byte("CTR"))
	if i < 1 || len(f) < i+11 {
		return 0, false, false
	}
	n, err := strconv.Atoi(string(f[i+3 : i+11]))
	if err != nil {
		return 0, false, false
	}
	return uint32(n), f[i-1]&0x1f == 5, true
}

// H.264 is forwarded when a publisher offers it, and a late subscriber
// starts on an IDR frame (which the SFU finds inside STAP-A packets).
func TestH264IsForwarded(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bLog := newFrameLog()
	join(t, ctx, srv, "bob", "h264", sdk.Options{OnTrack: bLog.onTrack})
	a := join(t, ctx, srv, "alice", "h264", sdk.Options{})
	publishVideo(ctx, t, a, sdk.H264, h264Frame)
	waitFor(t, "bob to get 60 H.264 frames ("+describe(bLog)+")", 30*time.Second, func() bool { return bLog.count("video") >= 60 })
	bLog.checkInOrder(t, "video")

	cLog := newFrameLog()
	join(t, ctx, srv, "carol", "h264", sdk.Options{OnTrack: cLog.onTrack})
	waitFor(t, "late carol to get 30 H.264 frames", 30*time.Second, func() bool { return cLog.count("video") >= 30 })
	cLog.mu.Lock()
	firstKey := cLog.firstKey["video"]
	cLog.mu.Unlock()
	if !firstKey {
		t.Error("carol's first H.264 frame was not an IDR frame")
	}
	cLog.checkInOrder(t, "video")
}
