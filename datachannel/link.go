package datachannel

import (
	"context"
	"sync"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/collab/session"
	"github.com/huddle-rtc/huddle/internal/ratelog"
)

// link is one participant's pair of channels and the session they carry.
// Fields marked "hub.mu" are guarded by the hub's mutex.
type link struct {
	hub  *Hub
	p    Participant
	sess *session.Session
	log  *ratelog.Log

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // deliver, and the writer of each collab channel

	// hub.mu
	collab     *sender
	collabCh   Channel
	stopWriter context.CancelFunc
	cursorsCh  Channel
	left       bool

	inbox      chan []byte // collab messages, in order
	cursorSend sync.Mutex  // one SendText at a time on the cursors channel
}

func newLink(h *Hub, p Participant) *link {
	ctx, cancel := context.WithCancel(h.ctx)
	l := &link{
		hub: h, p: p,
		log:    ratelog.New(h.log.With("participant", p.ID, "identity", p.Identity, "room", p.Room)),
		ctx:    ctx,
		cancel: cancel,
		inbox:  make(chan []byte, 64),
	}
	l.sess = h.sessions.Join(p, l)
	return l
}

// run owns the link's goroutines and its session's, and returns once they
// have all stopped.
func (l *link) run() {
	l.wg.Add(1)
	go func() { defer l.wg.Done(); l.deliver() }()
	<-l.ctx.Done()
	l.wg.Wait()
	l.sess.Wait()
}

// deliver hands collab messages to the session, in order.
func (l *link) deliver() {
	for {
		select {
		case <-l.ctx.Done():
			return
		case msg := <-l.inbox:
			l.sess.Handle(msg)
		}
	}
}

func (l *link) attachCollab(ch Channel) {
	h := l.hub
	s := newSender(h, ch, l.log, func() { go h.leaveIf(l) })
	wctx, stop := context.WithCancel(l.ctx)
	h.mu.Lock()
	if l.left {
		h.mu.Unlock()
		stop()
		_ = ch.Close()
		return
	}
	oldCh, oldStop := l.collabCh, l.stopWriter
	l.collab, l.collabCh, l.stopWriter = s, ch, stop
	l.wg.Add(1) // under h.mu, before leave can cancel: run's Wait counts it
	h.mu.Unlock()
	if oldCh != nil {
		oldStop()
		_ = oldCh.Close()
	}
	go func() {
		defer l.wg.Done()
		s.run(wctx)
	}()
	// The session closes what was open on the old channel; the client
	// opens again on the new one.
	if !l.sess.Attach(s) {
		return
	}
	rd := newReader(h.cfg.MaxMessage)
	ch.OnMessage(func(m webrtc.DataChannelMessage) {
		msg, err := rd.add(m.Data)
		if err != nil {
			l.sess.FrameError(err)
			return
		}
		if msg == nil {
			return
		}
		select {
		case l.inbox <- msg: // a full inbox pauses this channel's reading: backpressure up to the client
		case <-l.ctx.Done():
		}
	})
	ch.OnClose(func() {
		h.mu.Lock()
		current := l.collabCh == ch
		h.mu.Unlock()
		if current {
			h.leaveIf(l)
		}
	})
}

func (l *link) attachCursors(ch Channel) {
	h := l.hub
	h.mu.Lock()
	if l.left {
		h.mu.Unlock()
		_ = ch.Close()
		return
	}
	old := l.cursorsCh
	l.cursorsCh = ch
	h.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	rd := newReader(h.cfg.MaxMessage)
	ch.OnMessage(func(m webrtc.DataChannelMessage) {
		msg, err := rd.add(m.Data)
		if err != nil {
			l.sess.FrameError(err)
			return
		}
		if msg != nil {
			l.sess.Cursor(msg)
		}
	})
}

// SendCursor passes a cursor on the cursors channel, dropping it when the
// channel is not open or backed up: the next one replaces it.
func (l *link) SendCursor(msg []byte) {
	h := l.hub
	h.mu.Lock()
	ch := l.cursorsCh
	h.mu.Unlock()
	if ch == nil || ch.ReadyState() != webrtc.DataChannelStateOpen {
		return
	}
	if ch.BufferedAmount() >= uint64(h.cfg.CursorHighWater) {
		return
	}
	l.cursorSend.Lock()
	_ = ch.SendText(string(msg))
	l.cursorSend.Unlock()
}

// leave ends the link and its session; with broadcast the room hears
// about the documents it had open.
func (l *link) leave(broadcast bool) {
	h := l.hub
	h.mu.Lock()
	l.left = true
	chs := []Channel{l.collabCh, l.cursorsCh}
	h.mu.Unlock()
	l.sess.Close(broadcast)
	l.cancel()
	for _, ch := range chs {
		if ch != nil {
			go ch.Close() // Pion's Close may wait for the association
		}
	}
}
