package play

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// readAll reads a file's frames.
func readAll(t *testing.T, path string, interval time.Duration) []frame {
	t.Helper()
	r, err := openReader(path, interval)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []frame
	for {
		f, err := r.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
}

// The readers time frames from the files' own clocks: IVF timestamps and
// Ogg granule positions (both 20 ms apart in the test files), so playing
// keeps the recorded pace.
func TestFrameTimes(t *testing.T) {
	for _, name := range []string{"hello.ivf", "hello.ogg"} {
		frames := readAll(t, filepath.Join("..", "testdata", name), 0)
		if len(frames) != 25 {
			t.Fatalf("%s: %d frames, want 25", name, len(frames))
		}
		for i, f := range frames {
			if want := time.Duration(i) * 20 * time.Millisecond; f.at != want {
				t.Fatalf("%s frame %d due at %v, want %v", name, i, f.at, want)
			}
		}
	}
}

// Annex B NAL units are grouped into access units: parameter sets, SEI
// and delimiters open a new one after a slice, and so does a slice whose
// first_mb_in_slice is 0; the further slices of a picture stay with it.
func TestH264AccessUnits(t *testing.T) {
	nal := func(b ...byte) []byte { return append([]byte{0, 0, 0, 1}, b...) }
	stream := bytes.Join([][]byte{
		nal(0x09, 0xf0),             // AUD
		nal(0x67, 0x42, 0xe0, 0x1f), // SPS
		nal(0x68, 0xce, 0x3c, 0x80), // PPS
		nal(0x65, 0x88, 0x01),       // IDR, first_mb_in_slice 0
		nal(0x65, 0x40, 0x02),       // IDR, a later slice of the same picture
		nal(0x41, 0x9a, 0x03),       // non-IDR, new picture
		nal(0x06, 0x05, 0x01),       // SEI: opens the next access unit
		nal(0x41, 0x9a, 0x04),       // non-IDR
	}, nil)
	path := filepath.Join(t.TempDir(), "au.h264")
	if err := os.WriteFile(path, stream, 0o644); err != nil {
		t.Fatal(err)
	}
	frames := readAll(t, path, 40*time.Millisecond)
	wantNALs := []int{5, 1, 2}
	if len(frames) != len(wantNALs) {
		t.Fatalf("%d access units, want %d", len(frames), len(wantNALs))
	}
	for i, f := range frames {
		if n := bytes.Count(f.data, []byte{0, 0, 0, 1}); n != wantNALs[i] {
			t.Errorf("access unit %d holds %d NAL units, want %d", i, n, wantNALs[i])
		}
		if want := time.Duration(i) * 40 * time.Millisecond; f.at != want {
			t.Errorf("access unit %d due at %v, want %v", i, f.at, want)
		}
	}
}
