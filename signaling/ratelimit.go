package signaling

// What a connection past its message rate is told. Dropped messages are
// explained by one rate_limited error a second, except the requests a
// client waits on an answer for: a publisher offer (its answer) and a chat
// message (its echo). Each of those dropped is refused at once, with its
// type as the ref, so that the client does not wait forever. A client has
// one offer outstanding at a time, and a chat refusal is no larger than
// its echo, so this adds little; the send queue bounds a client that
// floods them and reads nothing.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// rateLimited is called for each message dropped by the rate limit.
func (s *session) rateLimited(data []byte) {
	s.srv.metrics.errors.WithLabelValues(protocol.CodeRateLimited).Inc()
	switch awaited(data) {
	case protocol.TypeOffer:
		if s.offerDropped == nil {
			s.offerDropped, _ = protocol.Encode(&protocol.Error{Code: protocol.CodeRateLimited, Message: s.rateMessage("this offer was dropped; offer again in a moment"), Ref: protocol.TypeOffer})
		}
		s.sendRaw(s.offerDropped, false)
		return
	case protocol.TypeChat:
		if s.chatDropped == nil {
			s.chatDropped, _ = protocol.Encode(&protocol.Error{Code: protocol.CodeRateLimited, Message: s.rateMessage("this chat message was dropped, not stored; send it again in a moment"), Ref: protocol.TypeChat})
		}
		s.sendRaw(s.chatDropped, false)
		return
	}
	if time.Since(s.limitedAt) < time.Second {
		return // one error per second is enough to explain the drops
	}
	s.limitedAt = time.Now()
	s.send(&protocol.Error{Code: protocol.CodeRateLimited, Message: s.rateMessage("messages were dropped")})
}

func (s *session) rateMessage(what string) string {
	return fmt.Sprintf("more than %g messages a second (burst %d); %s", s.srv.cfg.MessageRate, s.srv.cfg.MessageBurst, what)
}

// awaited returns the type of a well-formed message that the client waits
// on an answer for (offer, chat), or "". Only the messages that peek as
// one of those are scanned whole.
func awaited(data []byte) string {
	var typ string
	switch string(peekType(data)) { // compared without a conversion
	case protocol.TypeOffer:
		typ = protocol.TypeOffer
	case protocol.TypeChat:
		typ = protocol.TypeChat
	default:
		return ""
	}
	if !json.Valid(data) {
		return ""
	}
	return typ
}

// peekType returns the raw value of a JSON object's top-level "type" key
// without decoding the message or allocating: nil when data is not an
// object, has no such key, or the value is not a string without escapes.
// It reads up to the key (Huddle's clients send it first). A key spelled
// unusually (escaped, in another case, repeated) may peek differently from
// protocol.Decode; the only effect is which rate_limited error is sent.
func peekType(data []byte) []byte {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil
	}
	for i++; ; i++ { // i is past '{' or ','
		i = skipSpace(data, i)
		key, end, ok := rawString(data, i)
		if !ok {
			return nil
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return nil
		}
		i = skipSpace(data, i+1)
		if string(key) == "type" { // compared without a conversion
			val, _, ok := rawString(data, i)
			if !ok || bytes.IndexByte(val, '\\') >= 0 {
				return nil
			}
			return val
		}
		if i, ok = skipValue(data, i); !ok {
			return nil
		}
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != ',' {
			return nil
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// rawString reads the JSON string at data[i]: its contents as written
// (escapes untouched) and the index past its closing quote.
func rawString(data []byte, i int) ([]byte, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++ // the escaped byte cannot end the string
		case '"':
			return data[i+1 : j], j + 1, true
		}
	}
	return nil, i, false
}

// skipValue passes over the JSON value at data[i] (checked only as far as
// finding its end) and returns the index past it.
func skipValue(data []byte, i int) (int, bool) {
	depth := 0
	for i < len(data) {
		switch c := data[i]; c {
		case '"':
			_, end, ok := rawString(data, i)
			if !ok {
				return i, false
			}
			i = end
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i, true // the end of the enclosing object
			}
			depth--
			i++
		case ',':
			if depth == 0 {
				return i, true
			}
			i++
		default:
			i++
		}
		if depth == 0 && i > 0 && (data[i-1] == '"' || data[i-1] == '}' || data[i-1] == ']') {
			return i, true
		}
	}
	return i, depth == 0
}
