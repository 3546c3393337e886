package protocol

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFramingRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("ab é€😀\"\\{}")
	for _, size := range []int{0, 1, 100, MaxFrame - 1, MaxFrame, MaxFrame + 1, 3 * MaxFrame, 1 << 20} {
		var sb strings.Builder
		sb.WriteString("{")
		for sb.Len() < size {
			sb.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		msg := []byte(sb.String())
		frames := SplitFrames(msg, 7, 0)
		var r Reassembler
		var got []byte
		for i, f := range frames {
			if len(f) > MaxFrame {
				t.Fatalf("size %d: frame %d is %d bytes", size, i, len(f))
			}
			if !utf8.Valid(f) {
				t.Fatalf("size %d: frame %d splits a code point", size, i)
			}
			out, err := r.Add(f)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if out != nil {
				if i != len(frames)-1 {
					t.Fatalf("size %d: message complete at frame %d of %d", size, i, len(frames))
				}
				got = out
			}
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("size %d: round trip differs", size)
		}
	}
}

func TestReassemblerRefuses(t *testing.T) {
	big := []byte("{" + strings.Repeat("x", 3*MaxFrame))
	frames := SplitFrames(big, 1, 0)
	cases := map[string][][]byte{
		"empty":           {{}},
		"bad header":      {[]byte("#x:0:1:{}")},
		"short header":    {[]byte("#1:0")},
		"bad last flag":   {[]byte("#1:0:2:{}")},
		"starts mid-way":  {frames[1]},
		"skips a chunk":   {frames[0], frames[2]},
		"whole inside":    {frames[0], []byte("{}")},
		"other id inside": {frames[0], SplitFrames(big, 2, 0)[1]},
	}
	for name, in := range cases {
		var r Reassembler
		var err error
		for _, f := range in {
			if _, err = r.Add(f); err != nil {
				break
			}
		}
		if !errors.Is(err, ErrFrame) {
			t.Errorf("%s: err = %v, want ErrFrame", name, err)
		}
		// The reassembler recovers for the next message.
		if out, err := r.Add([]byte(`{"type":"x"}`)); err != nil || string(out) != `{"type":"x"}` {
			t.Errorf("%s: no recovery: %q %v", name, out, err)
		}
	}
	var r Reassembler
	r.SetLimit(MaxFrame)
	var err error
	for _, f := range frames {
		if _, err = r.Add(f); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFrame) {
		t.Errorf("over the limit: err = %v", err)
	}
}
