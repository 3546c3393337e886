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
// on an answer for (offer, chat), or "". The message is parsed as
// protocol.Decode parses its head, so the two never disagree; a drop is
// already a message read whole, and this adds one scan of it.
func awaited(data []byte) string {
	var head struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(data, &head) != nil {
		return ""
	}
	switch head.Type {
	case protocol.TypeOffer, protocol.TypeChat:
		return head.Type
	}
	return ""
}
