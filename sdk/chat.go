package sdk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

const (
	chatSeenMax    = 2048 // message ids remembered for de-duplication
	chatHistoryMax = 500  // messages kept for ChatHistory
)

// chatState de-duplicates chat by message id (delivery is at least once),
// keeps recent history, and holds the bot's own messages until the server
// echoes them back (its acknowledgement).
type chatState struct {
	mu      sync.Mutex
	seen    map[string]bool
	order   []string
	history []protocol.ChatMessage
	pending map[string]*pendingChat // by client id
}

type pendingChat struct {
	text string
	done chan protocol.ChatMessage // buffered 1
}

func (c *chatState) init() {
	c.seen = map[string]bool{}
	c.pending = map[string]*pendingChat{}
}

// deliver handles a chat message from the server: history, replay or live.
func (c *chatState) deliver(r *Room, m protocol.ChatMessage) {
	c.mu.Lock()
	if p := c.pending[m.ClientID]; p != nil && m.Identity == r.identity() {
		delete(c.pending, m.ClientID)
		p.done <- m
	}
	if c.seen[m.ID] {
		c.mu.Unlock()
		return
	}
	c.seen[m.ID] = true
	c.order = append(c.order, m.ID)
	if len(c.order) > chatSeenMax {
		delete(c.seen, c.order[0])
		c.order = c.order[1:]
	}
	c.history = append(c.history, m)
	if len(c.history) > chatHistoryMax {
		c.history = c.history[len(c.history)-chatHistoryMax:]
	}
	c.mu.Unlock()
	if r.opts.OnChat != nil {
		r.opts.OnChat(m)
	}
}

// resend sends again what the server has not acknowledged, with the same
// client ids: the server stores each once.
func (c *chatState) resend(r *Room) {
	c.mu.Lock()
	var out []*protocol.Chat
	for id, p := range c.pending {
		out = append(out, &protocol.Chat{ClientID: id, Text: p.text})
	}
	c.mu.Unlock()
	r.mu.Lock()
	conn := r.conn
	r.mu.Unlock()
	for _, m := range out {
		_ = conn.send(m)
	}
}

// ErrChatNotStored is returned (wrapped, with the server's
// *protocol.Error) by SendChat when the server could not store the message
// (code unavailable: in cluster mode its store is unreachable or the room
// is moving) even after the one retry SendChat makes. Nothing was stored:
// send it again later.
var ErrChatNotStored = errors.New("chat: the server could not store the message; nothing was saved, send it again later")

// chatRetryWait is about how long SendChat waits before its one retry of a
// message the store could not save (jittered by half, so that a room's
// bots do not all retry at once).
const chatRetryWait = 500 * time.Millisecond

// SendChat posts a message to the room and waits until the server has
// stored it; it returns the message as stored (with the server's id and
// time). If the connection drops meanwhile, the message is sent again
// after the reconnect, and still stored once. If the server's store cannot
// save it (code unavailable), it is sent once more, with the same client
// id, after about chatRetryWait; a second refusal returns ErrChatNotStored.
// Past the server's message rate it returns the rate_limited refusal (a
// *protocol.Error): nothing was stored; send again in a moment.
func (r *Room) SendChat(ctx context.Context, text string) (protocol.ChatMessage, error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	p := &pendingChat{text: text, done: make(chan protocol.ChatMessage, 1)}
	r.chat.mu.Lock()
	r.chat.pending[id] = p
	r.chat.mu.Unlock()
	defer func() {
		r.chat.mu.Lock()
		delete(r.chat.pending, id)
		r.chat.mu.Unlock()
	}()
	errs := make(chan *protocol.Error, 1)
	stop := r.watchErrors(protocol.TypeChat, errs)
	defer stop()
	for retried := false; ; retried = true {
		r.mu.Lock()
		conn := r.conn
		r.mu.Unlock()
		if err := conn.send(&protocol.Chat{ClientID: id, Text: text}); err != nil {
			r.log.Debug("chat: send failed; it goes again after the reconnect", "err", err)
		}
		select {
		case m := <-p.done:
			return m, nil
		case e := <-errs:
			if e.Code != protocol.CodeUnavailable {
				return protocol.ChatMessage{}, fmt.Errorf("chat refused: %w", e)
			}
			if retried {
				return protocol.ChatMessage{}, fmt.Errorf("%w (%w)", ErrChatNotStored, e)
			}
			r.log.Debug("chat: the server could not store the message; retrying once", "err", e)
			if err := r.chatRetryPause(ctx); err != nil {
				return protocol.ChatMessage{}, err
			}
		case <-ctx.Done():
			return protocol.ChatMessage{}, fmt.Errorf("chat: %w", ctx.Err())
		case <-r.ctx.Done():
			return protocol.ChatMessage{}, errors.Join(errors.New("chat: session ended"), context.Cause(r.ctx))
		}
	}
}

// chatRetryPause waits chatRetryWait, ±50%, or until ctx or the room ends.
func (r *Room) chatRetryPause(ctx context.Context) error {
	t := time.NewTimer(chatRetryWait/2 + mrand.N(chatRetryWait))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("chat: waiting to retry a message the server could not store: %w", ctx.Err())
	case <-r.ctx.Done():
		return errors.Join(errors.New("chat: session ended"), context.Cause(r.ctx))
	}
}

// ChatHistory returns the recent chat messages the bot has seen, oldest
// first: the history the server sent at the join, then what came since.
func (r *Room) ChatHistory() []protocol.ChatMessage {
	r.chat.mu.Lock()
	defer r.chat.mu.Unlock()
	return append([]protocol.ChatMessage(nil), r.chat.history...)
}
