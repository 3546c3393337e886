package session

import (
	"encoding/json"
	"io"
	"unicode/utf8"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// openedStream produces an opened message with a snapshot piece by piece:
// the JSON of the text is escaped a block at a time as the transport reads
// it, so that a big document is never encoded whole for each opener (the
// text itself is the service's immutable snapshot string).
type openedStream struct {
	pre  []byte // the message without text, up to `"text":"`
	text string // still to escape
	post []byte // `"}`
	buf  []byte // escaped and not yet read
}

// escapeBlock is how much text is escaped at a time.
const escapeBlock = 8 << 10

func newOpenedStream(opened *protocol.DocOpened, text string) *openedStream {
	o := *opened
	o.Text = nil
	head := mustEncode(&o) // ends with "}"
	pre := append(head[:len(head)-1:len(head)-1], `,"text":"`...)
	return &openedStream{pre: pre, text: text, post: []byte(`"}`)}
}

func (st *openedStream) Read(p []byte) (int, error) {
	for len(st.buf) == 0 {
		switch {
		case st.pre != nil:
			st.buf, st.pre = st.pre, nil
		case st.text != "":
			n := min(escapeBlock, len(st.text))
			for n < len(st.text) && !utf8.RuneStart(st.text[n]) {
				n++
			}
			b, _ := json.Marshal(st.text[:n]) // a string always encodes
			st.buf, st.text = b[1:len(b)-1], st.text[n:]
		case st.post != nil:
			st.buf, st.post = st.post, nil
		default:
			return 0, io.EOF
		}
	}
	n := copy(p, st.buf)
	st.buf = st.buf[n:]
	return n, nil
}
