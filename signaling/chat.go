package signaling

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// handleChat stores a chat message and then sends it to the whole room,
// the sender included (its copy, with the server's id and time, is the
// acknowledgement).
func (s *session) handleChat(c *protocol.Chat) {
	m := s.member
	if !m.grantsNow().PublishData {
		s.sendError(protocol.CodeForbidden, "chat needs the publishData grant", protocol.TypeChat)
		return
	}
	if err := checkText(c.Text, protocol.MaxChatLen, false); err != nil {
		s.sendError(protocol.CodeLimit, "chat text: "+err.Error(), protocol.TypeChat)
		return
	}
	if len(c.ClientID) > protocol.MaxClientIDLen {
		s.sendError(protocol.CodeLimit, fmt.Sprintf("clientId is longer than %d bytes", protocol.MaxClientIDLen), protocol.TypeChat)
		return
	}
	msg := protocol.ChatMessage{
		ClientID: c.ClientID, From: m.id, Identity: m.claims.Identity, Name: m.claims.Name,
		Text: c.Text, TS: time.Now().UnixMilli(),
	}
	stored, dup, err := s.srv.chat.Post(m.room.name, msg)
	if err != nil {
		code, text := chatErrorCode(err)
		s.srv.log.Warn("chat not stored", "room", m.room.name, "code", code, "err", err)
		s.sendError(code, text, protocol.TypeChat)
		return
	}
	if dup {
		s.send(&stored) // already posted: only the sender needs its ack again
		return
	}
	m.room.mu.Lock()
	m.room.eventLocked(&stored, "")
	m.room.mu.Unlock()
}

// chatErrorCode says what the sender of a message the store refused is
// told: a store that is away (Redis unreachable) or that this node may no
// longer write (the room moved) is worth a retry with the same client id,
// which the store de-duplicates; anything else is the server's fault.
func chatErrorCode(err error) (code, text string) {
	switch {
	case errors.Is(err, collab.ErrUnavailable):
		return protocol.CodeUnavailable, "the chat store is unreachable: the message was not saved; send it again in a moment"
	case errors.Is(err, collab.ErrFenced), errors.Is(err, collab.ErrConflict):
		return protocol.CodeUnavailable, "the room is moving to another server: the message was not saved; send it again after the reconnect"
	}
	return protocol.CodeInternal, "the message could not be stored: " + err.Error()
}

// checkText refuses text that is too long, not UTF-8, or has control
// characters other than newlines and tabs.
func checkText(t string, maxLen int, emptyOK bool) error {
	switch {
	case t == "" && !emptyOK:
		return fmt.Errorf("is empty")
	case !utf8.ValidString(t):
		return fmt.Errorf("is not valid UTF-8")
	case utf8.RuneCountInString(t) > maxLen:
		return fmt.Errorf("is longer than %d characters", maxLen)
	case strings.ContainsFunc(t, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' }):
		return fmt.Errorf("has control characters")
	}
	return nil
}

// chatHistory is what a join shows of the room's chat: empty when the
// store cannot be read now (a join goes on without it).
func (s *Server) chatHistory(room string) []protocol.ChatMessage {
	h, err := s.chat.History(room)
	if err != nil {
		s.log.Warn("chat history unavailable for a join", "room", room, "err", err)
	}
	if h == nil {
		return []protocol.ChatMessage{}
	}
	return h
}
