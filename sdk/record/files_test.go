package record_test

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/huddle-rtc/huddle/sdk/sdktest"
)

// parsed is what a recorded file holds, read back with pion's readers.
type parsed struct {
	counters   []uint32
	firstKey   bool
	durationMS int64 // first frame to last, from the file's own timing
}

func parseIVF(t *testing.T, path string) parsed {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, hdr, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if hdr.FourCC != "VP80" {
		t.Fatalf("%s: fourcc %q", path, hdr.FourCC)
	}
	var out parsed
	var first, last uint64
	for i := 0; ; i++ {
		frame, fh, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s frame %d: %v", path, i, err)
		}
		if i == 0 {
			first, out.firstKey = fh.Timestamp, frame[0]&0x01 == 0
		}
		last = fh.Timestamp
		n, ok := sdktest.Counter(webrtc.MimeTypeVP8, frame)
		if !ok {
			t.Fatalf("%s frame %d has no counter", path, i)
		}
		out.counters = append(out.counters, n)
	}
	if int(hdr.NumFrames) != len(out.counters) {
		t.Errorf("%s: header says %d frames, file holds %d (not finished cleanly?)", path, hdr.NumFrames, len(out.counters))
	}
	// ivfreader hands out pts × rate / scale; one more × scale / rate
	// gives the pts, and one more the seconds.
	ratio := float64(hdr.TimebaseNumerator) / float64(hdr.TimebaseDenominator)
	out.durationMS = int64(float64(last-first) * ratio * ratio * 1000)
	return out
}

func parseOgg(t *testing.T, path string) parsed {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, hdr, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if hdr.SampleRate != 48000 {
		t.Fatalf("%s: sample rate %d", path, hdr.SampleRate)
	}
	var out parsed
	var first, last uint64
	for {
		payload, ph, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if _, isHeader := ph.HeaderType(payload); isHeader || len(payload) == 0 {
			continue // OpusTags, or the empty end-of-stream page
		}
		n, ok := sdktest.Counter(webrtc.MimeTypeOpus, payload)
		if !ok {
			t.Fatalf("%s: a page has no counter", path)
		}
		if len(out.counters) == 0 {
			first = ph.GranulePosition
		}
		last = ph.GranulePosition
		out.counters = append(out.counters, n)
	}
	out.durationMS = int64(last-first) * 1000 / 48000
	out.firstKey = true
	return out
}

func parseH264(t *testing.T, path string) parsed {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out parsed
	for i := 0; ; i++ {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s NAL %d: %v", path, i, err)
		}
		if i == 0 {
			out.firstKey = nal.UnitType == h264reader.NalUnitTypeSPS
		}
		if nal.UnitType != h264reader.NalUnitTypeCodedSliceIdr && nal.UnitType != h264reader.NalUnitTypeCodedSliceNonIdr {
			continue
		}
		n, ok := sdktest.Counter(webrtc.MimeTypeH264, nal.Data)
		if !ok {
			t.Fatalf("%s: slice %d has no counter", path, len(out.counters))
		}
		out.counters = append(out.counters, n)
	}
	// Annex B carries no timing: the frames at the publisher's rate are
	// the file's duration.
	out.durationMS = int64(max(0, len(out.counters)-1)) * sdktest.FrameInterval.Milliseconds()
	return out
}
