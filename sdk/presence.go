package sdk

import (
	"fmt"
	"sync"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// SetPresence sets this bot's presence: protocol.PresenceOnline or
// protocol.PresenceAway, and a custom status ("" clears it). Everyone in
// the room gets a presence event.
func (r *Room) SetPresence(state, status string) error {
	return r.sendNow(&protocol.SetPresence{State: state, Status: status})
}

// SetTyping says the bot is typing (or stopped). The server forwards at
// most one a second; others expire it by themselves.
func (r *Room) SetTyping(typing bool) error {
	return r.sendNow(&protocol.Typing{Typing: typing})
}

func (r *Room) sendNow(m any) error {
	r.mu.Lock()
	conn := r.conn
	r.mu.Unlock()
	if err := conn.send(m); err != nil {
		return fmt.Errorf("%s: %w", protocol.TypeOf(m), err)
	}
	return nil
}

// errorWatchers lets a call wait for the server's error about its own
// request (matched by the error's ref).
type errorWatchers struct {
	mu sync.Mutex
	w  map[*chan *protocol.Error]string
}

func (r *Room) watchErrors(ref string, ch chan *protocol.Error) (stop func()) {
	r.errw.mu.Lock()
	if r.errw.w == nil {
		r.errw.w = map[*chan *protocol.Error]string{}
	}
	r.errw.w[&ch] = ref
	r.errw.mu.Unlock()
	return func() {
		r.errw.mu.Lock()
		delete(r.errw.w, &ch)
		r.errw.mu.Unlock()
	}
}

func (r *Room) notifyError(e *protocol.Error) {
	r.errw.mu.Lock()
	defer r.errw.mu.Unlock()
	for ch, ref := range r.errw.w {
		if ref == e.Ref {
			select {
			case *ch <- e:
			default:
			}
		}
	}
}
