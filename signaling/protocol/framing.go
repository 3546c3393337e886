package protocol

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Data channel messages larger than MaxFrame bytes travel as chunk frames,
// because browsers and Pion refuse messages over 64 KiB and large messages
// hold up everything behind them. A chunk frame is text:
//
//	#<id>:<index>:<last>:<data>
//
// id numbers the message (per sender and channel), index counts from 0, last
// is 1 on the final chunk and 0 otherwise, and data is a piece of the
// message's JSON text, cut at a code point boundary. Whole messages start
// with "{" and need no header.
const (
	MaxFrame = 16 << 10
	// MaxMessage bounds a reassembled message: a 1 MB document is at most
	// 4 MB of UTF-8, plus JSON escaping.
	MaxMessage = 32 << 20
)

// SplitFrames cuts one message into frames of at most max bytes (MaxFrame
// when max <= 0). A message that fits is returned as is.
func SplitFrames(msg []byte, id uint64, max int) [][]byte {
	if max <= 0 {
		max = MaxFrame
	}
	if len(msg) <= max {
		return [][]byte{msg}
	}
	var frames [][]byte
	for i := 0; len(msg) > 0; i++ {
		header := fmt.Sprintf("#%d:%d:", id, i)
		room := max - len(header) - 2
		n := min(room, len(msg))
		for n < len(msg) && n > 0 && !utf8.RuneStart(msg[n]) {
			n-- // never split a code point
		}
		last := "0"
		if n == len(msg) {
			last = "1"
		}
		f := make([]byte, 0, len(header)+2+n)
		f = append(f, header...)
		f = append(f, last...)
		f = append(f, ':')
		f = append(f, msg[:n]...)
		frames = append(frames, f)
		msg = msg[n:]
	}
	return frames
}

// Reassembler joins chunk frames back into messages. One per channel and
// sender; not safe for concurrent use.
type Reassembler struct {
	id    uint64
	next  int
	buf   []byte
	limit int
}

// ErrFrame wraps every framing error; ErrTooLarge (which also wraps
// ErrFrame) says the message went past the reassembly limit.
var (
	ErrFrame    = errors.New("bad frame")
	ErrTooLarge = fmt.Errorf("%w: message too large", ErrFrame)
)

// Add takes one frame. It returns a whole message when one is complete, or
// nil while chunks are still missing. After an error the partial message is
// dropped and the next frame starts afresh.
func (r *Reassembler) Add(frame []byte) ([]byte, error) {
	if len(frame) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrFrame)
	}
	if frame[0] != '#' {
		if r.buf != nil {
			r.reset()
			return nil, fmt.Errorf("%w: whole message inside chunked message %d", ErrFrame, r.id)
		}
		return frame, nil
	}
	parts := strings.SplitN(string(frame[1:min(len(frame), 64)]), ":", 4)
	if len(parts) < 4 {
		r.reset()
		return nil, fmt.Errorf("%w: chunk header", ErrFrame)
	}
	id, err1 := strconv.ParseUint(parts[0], 10, 64)
	idx, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || (parts[2] != "0" && parts[2] != "1") {
		r.reset()
		return nil, fmt.Errorf("%w: chunk header", ErrFrame)
	}
	data := frame[len(parts[0])+len(parts[1])+len(parts[2])+4:]
	if idx == 0 {
		if r.buf != nil {
			r.reset()
			return nil, fmt.Errorf("%w: chunked message %d started before %d ended", ErrFrame, id, r.id)
		}
		r.id, r.next, r.buf = id, 0, []byte{}
	}
	if r.buf == nil || id != r.id || idx != r.next {
		r.reset()
		return nil, fmt.Errorf("%w: chunk %d of message %d out of order", ErrFrame, idx, id)
	}
	limit := r.limit
	if limit <= 0 {
		limit = MaxMessage
	}
	if len(r.buf)+len(data) > limit {
		r.reset()
		return nil, fmt.Errorf("%w: message %d larger than %d bytes", ErrTooLarge, id, limit)
	}
	r.buf = append(r.buf, data...)
	r.next++
	if parts[2] == "1" {
		msg := r.buf
		r.reset()
		return msg, nil
	}
	return nil, nil
}

// SetLimit changes the largest message accepted (MaxMessage by default).
func (r *Reassembler) SetLimit(n int) { r.limit = n }

func (r *Reassembler) reset() { r.buf, r.next = nil, 0 }
