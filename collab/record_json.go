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
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}
