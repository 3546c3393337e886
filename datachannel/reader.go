package datachannel

import (
	"strconv"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// reader turns frames of one channel into messages. After a broken chunk
// sequence it skips the rest of that message quietly, so one bad message
// gives one error.
type reader struct {
	r        protocol.Reassembler
	limit    int
	skipping bool
}

func newReader(limit int) *reader {
	rd := &reader{limit: limit}
	rd.r.SetLimit(limit)
	return rd
}

// add returns a whole message, nil while one is incomplete (or skipped),
// or an error for a frame that breaks the rules.
func (rd *reader) add(frame []byte) ([]byte, error) {
	if len(frame) > 0 && frame[0] == '#' {
		if rd.skipping {
			if idx, ok := chunkIndex(frame); ok && idx != 0 {
				return nil, nil
			}
			rd.skipping = false
		}
	} else {
		rd.skipping = false
		if len(frame) > rd.limit {
			return nil, protocol.ErrTooLarge
		}
	}
	msg, err := rd.r.Add(frame)
	if err != nil {
		rd.skipping = len(frame) > 0 && frame[0] == '#'
		return nil, err
	}
	return msg, nil
}

// chunkIndex reads the index of a chunk frame "#id:index:...".
func chunkIndex(frame []byte) (int, bool) {
	i := 1
	for i < len(frame) && frame[i] != ':' {
		i++
	}
	j := i + 1
	for j < len(frame) && frame[j] != ':' {
		j++
	}
	if j >= len(frame) || j-i > 11 {
		return 0, false
	}
	n, err := strconv.Atoi(string(frame[i+1 : j]))
	return n, err == nil
}
