package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A relay message is one PUBLISH to the receiving node's inbox channel.
// Binary, because a frame is usually a small JSON signaling message and a
// JSON envelope would escape it again (about 2x on SDP):
//
//	kind (1) | dir (1) | link id (8) | seq (uvarint) | from (uvarint len + bytes) | body
//
// body by kind: open = room (uvarint len + bytes) + first frame; ack = empty;
// frame = the frame; close = code (uvarint) + reason.
type kind byte

const (
	kindOpen kind = iota + 1
	kindAck
	kindFrame
	kindClose
)

// dir says which end sent a message: the receiver looks the link up in its
// dialed or its accepted table.
const (
	fromDialer   byte = 0
	fromAcceptor byte = 1
)

type message struct {
	kind   kind
	dir    byte
	link   uint64
	seq    uint64
	from   string
	room   string // open
	body   []byte // open: first frame; frame: the frame
	code   int    // close
	reason string // close
}

func (m *message) encode() []byte {
	n := 2 + 8 + binary.MaxVarintLen64*3 + len(m.from) + len(m.room) + len(m.body) + len(m.reason)
	b := make([]byte, 0, n)
	b = append(b, byte(m.kind), m.dir)
	b = binary.BigEndian.AppendUint64(b, m.link)
	b = binary.AppendUvarint(b, m.seq)
	b = appendString(b, m.from)
	switch m.kind {
	case kindOpen:
		b = appendString(b, m.room)
		b = append(b, m.body...)
	case kindFrame:
		b = append(b, m.body...)
	case kindClose:
		b = binary.AppendUvarint(b, uint64(m.code))
		b = append(b, m.reason...)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errShort = errors.New("truncated relay message")

func decode(b []byte) (message, error) {
	var m message
	if len(b) < 10 {
		return m, errShort
	}
	m.kind, m.dir = kind(b[0]), b[1]
	if m.kind < kindOpen || m.kind > kindClose || m.dir > fromAcceptor {
		return m, fmt.Errorf("bad relay message header %d/%d", b[0], b[1])
	}
	m.link = binary.BigEndian.Uint64(b[2:10])
	b = b[10:]
	var n int
	if m.seq, n = binary.Uvarint(b); n <= 0 {
		return m, errShort
	}
	b = b[n:]
	var err error
	if m.from, b, err = readString(b); err != nil {
		return m, err
	}
	switch m.kind {
	case kindOpen:
		if m.room, b, err = readString(b); err != nil {
			return m, err
		}
		m.body = b
	case kindFrame:
		m.body = b
	case kindClose:
		code, n := binary.Uvarint(b)
		if n <= 0 {
			return m, errShort
		}
		m.code, m.reason = int(code), string(b[n:])
	}
	return m, nil
}

func readString(b []byte) (string, []byte, error) {
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return "", nil, errShort
	}
	return string(b[n : n+int(l)]), b[n+int(l):], nil
}
