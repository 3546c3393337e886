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

// droppedSays is what the refusal of each awaited message says.
var droppedSays = map[string]string{
	protocol.TypeOffer:  "this offer was dropped; offer again in a moment",
	protocol.TypeAnswer: "this answer was dropped; the server will offer again",
	protocol.TypeChat:   "this chat message was dropped, not stored; send it again in a moment",
}

// rateLimited is called for each message dropped by the rate limit.
func (s *session) rateLimited(data []byte) {
	s.srv.metrics.errors.WithLabelValues(protocol.CodeRateLimited).Inc()
	if typ := awaited(data); typ != "" {
		if typ == protocol.TypeAnswer && s.member != nil {
			// The server waits on this one: its next subscriber offer
			// waits for the answer. The peer sends the offer again in a
			// moment.
			if p := s.member.mediaPeer(); p != nil {
				p.AnswerDropped()
			}
		}
		s.sendRaw(s.droppedError(typ), false)
		return
	}
	if time.Since(s.limitedAt) < time.Second {
		return // one error per second is enough to explain the drops
	}
	s.limitedAt = time.Now()
	s.send(&protocol.Error{Code: protocol.CodeRateLimited, Message: s.rateMessage("messages were dropped")})
}

// droppedError is the refusal of a dropped message of an awaited type,
// encoded once per session.
func (s *session) droppedError(typ string) []byte {
	if b := s.droppedErrs[typ]; b != nil {
		return b
	}
	b, _ := protocol.Encode(&protocol.Error{Code: protocol.CodeRateLimited, Message: s.rateMessage(droppedSays[typ]), Ref: typ})
	if s.droppedErrs == nil {
		s.droppedErrs = map[string][]byte{}
	}
	s.droppedErrs[typ] = b
	return b
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
