package collab

import (
	"strconv"
	"time"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// appendRecord appends r's JSON (the same document encoding/json makes of
// an OpRecord, which is how the store reads it back) without reflection:
// the durable store encodes one per keystroke.
func appendRecord(b []byte, r OpRecord) []byte {
	var e recordEncoder
	return e.append(b, r)
}

// recordEncoder is appendRecord for the records of one commit. The writer
// stamps every op of a wake-up with one time, so the encoder formats it
// once and copies the text for the rest (formatting was a tenth of the
// encoding's cost).
type recordEncoder struct {
	t  time.Time
	tb []byte // t in RFC 3339 with nanoseconds; nil before the first record
}

func (e *recordEncoder) append(b []byte, r OpRecord) []byte {
	if e.tb == nil || r.Time != e.t {
		e.t, e.tb = r.Time, r.Time.AppendFormat(e.tb[:0], time.RFC3339Nano)
	}
	b = append(b, `{"rev":`...)
	b = strconv.AppendInt(b, r.Rev, 10)
	b = append(b, `,"author":`...)
	b = ot.AppendJSONString(b, r.Author)
	if r.ClientOpID != "" {
		b = append(b, `,"cid":`...)
		b = ot.AppendJSONString(b, r.ClientOpID)
	}
	b = append(b, `,"op":`...)
	b = r.Op.AppendJSON(b)
	b = append(b, `,"inv":`...)
	b = r.Inverse.AppendJSON(b)
	if r.Cause != "" {
		b = append(b, `,"cause":`...)
		b = ot.AppendJSONString(b, string(r.Cause))
	}
	if r.Target != 0 {
		b = append(b, `,"target":`...)
		b = strconv.AppendInt(b, r.Target, 10)
	}
	b = append(b, `,"t":"`...)
	b = append(b, e.tb...)
	return append(b, `"}`...)
}

// appendSnapshot appends s's JSON (as encoding/json makes it) without
// reflection: the durable store writes one every SnapshotEvery ops, the
// whole text each time.
func appendSnapshot(b []byte, s Snapshot) []byte {
	b = append(b, `{"rev":`...)
	b = strconv.AppendInt(b, s.Rev, 10)
	b = append(b, `,"text":`...)
	b = ot.AppendJSONString(b, s.Text)
	b = append(b, `,"t":"`...)
	b = s.Time.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}
