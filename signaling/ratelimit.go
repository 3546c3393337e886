package signaling

// What a connection past its message rate is told. Dropped messages are
// explained by one rate_limited error a second, except the messages
// someone waits on: a publisher offer (the client, for its answer), a chat
// message (the client, for its echo) and an answer to the server's
// subscriber offer (the server, whose next offer waits for it; it sends
// the offer again, sfu.Peer.AnswerDropped). Each of those dropped is
// refused at once, with its type as the ref, so that nobody waits forever. A client has
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
	case protocol.TypeAnswer:
		// The server waits on this one: its next subscriber offer waits
		// for the answer. The peer sends the offer again in a moment.
		if s.member != nil {
			if p := s.member.mediaPeer(); p != nil {
				p.AnswerDropped()
			}
		}
		if s.answerDropped == nil {
			s.answerDropped, _ = protocol.Encode(&protocol.Error{Code: protocol.CodeRateLimited, Message: s.rateMessage("this answer was dropped; the server will offer again"), Ref: protocol.TypeAnswer})
		}
		s.sendRaw(s.answerDropped, false)
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

// awaited returns the type of a well-formed message that someone waits on:
// the client for a publisher offer's answer or a chat message's echo, the
// server for the answer to its subscriber offer; else "". The message is parsed as
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
	case protocol.TypeOffer, protocol.TypeAnswer, protocol.TypeChat:
		return head.Type
	}
	return ""
}
