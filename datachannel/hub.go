// Package datachannel is the transport of Huddle's shared documents: it
// takes the "collab" and "cursors" data channels that every client opens
// on its publisher PeerConnection, reassembles their chunk frames
// (signaling/protocol's framing) and routes whole messages to the
// participant's documents session (package collab/session), which speaks
// the protocol; it carries the session's answers back under backpressure.
//
// Per participant there is one reader per channel (Pion's OnMessage, with
// a reassembler), one goroutine that hands collab messages to the session
// in order, and one writer with a queue bounded by bytes. The writer hands
// frames to the channel only while its buffered amount is under a
// high-water mark, so a slow peer never grows server memory without bound:
// when the queue is full a document stream's pending ops are dropped and
// the client is told `lagging` (it reopens and catches up); when even
// answers do not fit, the participant's data channels are closed. A
// message larger than a frame that the session streams (a big snapshot) is
// produced frame by frame as the channel drains, never queued whole.
// Cursors are sent straight away, or dropped when the receiver's cursors
// channel is backed up.
package datachannel

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/session"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Participant is who owns a pair of data channels, as signaling knows it.
type Participant = session.Participant

// Config tunes a hub. Zero values pick the defaults in brackets.
type Config struct {
	Logger *slog.Logger
	// QueueBytes bounds the messages waiting for one participant's collab
	// channel [8 MiB].
	QueueBytes int
	// HighWater: the writer stops handing frames to the channel while
	// its buffered amount is at or above this [1 MiB]; LowWater is when
	// it resumes [256 KiB].
	HighWater, LowWater int
	// CursorHighWater: a cursor update is dropped for a receiver whose
	// cursors channel has this much buffered [64 KiB].
	CursorHighWater int
	// CursorInterval: at most one cursor per participant and document is
	// passed on per interval; faster updates are coalesced [50ms].
	CursorInterval time.Duration
	// MaxMessage bounds one reassembled incoming message [protocol.MaxMessage].
	MaxMessage int
	// FrameSize is the chunking size of outgoing messages [protocol.MaxFrame].
	FrameSize int
	// PendingSubmits bounds a participant's submits awaiting their result
	// before its reading pauses [1024].
	PendingSubmits int
	// PresenceExpiry: a participant silent this long leaves document
	// presence [protocol.PresenceExpiry].
	PresenceExpiry time.Duration
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.QueueBytes, 8<<20)
	def(&c.HighWater, 1<<20)
	def(&c.LowWater, 256<<10)
	def(&c.CursorHighWater, 64<<10)
	def(&c.MaxMessage, protocol.MaxMessage)
	def(&c.FrameSize, protocol.MaxFrame)
	def(&c.PendingSubmits, 1024)
	if c.LowWater > c.HighWater {
		c.LowWater = c.HighWater / 2
	}
	if c.CursorInterval <= 0 {
		c.CursorInterval = 50 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Hub routes every participant's document channels to its session.
type Hub struct {
	sessions *session.Server
	cfg      Config
	log      *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	links  map[string]*link // by participant id

	queued        atomic.Int64 // bytes queued for all participants
	peak          atomic.Int64 // most bytes ever queued for one participant
	metricLagging atomic.Int64 // subscriptions dropped as lagging
}

// NewHub returns a hub with the default limits.
func NewHub(svc *collab.Service, log *slog.Logger) *Hub {
	return New(svc, Config{Logger: log})
}

// New returns a hub configured by cfg, with a session server over svc.
func New(svc *collab.Service, cfg Config) *Hub {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{
		sessions: session.NewServer(svc, session.Config{
			Logger: cfg.Logger, CursorInterval: cfg.CursorInterval, PendingSubmits: cfg.PendingSubmits,
			PresenceExpiry: cfg.PresenceExpiry,
		}),
		cfg: cfg, log: cfg.Logger,
		ctx: ctx, cancel: cancel,
		links: map[string]*link{},
	}
}

// Sessions is the documents session server the hub routes to.
func (h *Hub) Sessions() *session.Server { return h.sessions }

// Stats are the hub's queue figures, for metrics and tests.
type Stats struct {
	Participants int
	QueuedBytes  int64 // now, all participants
	PeakQueued   int64 // the most ever queued for one participant
	Lagging      int64 // document subscriptions dropped because a peer fell behind
}

// Stats reports the queue figures.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n := len(h.links)
	h.mu.Unlock()
	return Stats{Participants: n, QueuedBytes: h.queued.Load(), PeakQueued: h.peak.Load(), Lagging: h.metricLagging.Load()}
}

func (h *Hub) account(delta, senderBytes int) {
	h.queued.Add(int64(delta))
	for {
		p := h.peak.Load()
		if int64(senderBytes) <= p || h.peak.CompareAndSwap(p, int64(senderBytes)) {
			return
		}
	}
}

// Attach takes one data channel the client opened. Channels other than
// collab and cursors are closed.
func (h *Hub) Attach(p Participant, dc *webrtc.DataChannel) {
	if dc == nil {
		return
	}
	h.attach(p, dc)
}

func (h *Hub) attach(p Participant, ch Channel) {
	label := ch.Label()
	if label != protocol.ChannelCollab && label != protocol.ChannelCursors {
		h.log.Info("closing unknown data channel", "participant", p.ID, "label", label)
		_ = ch.Close()
		return
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = ch.Close()
		return
	}
	l := h.links[p.ID]
	if l == nil {
		l = newLink(h, p)
		h.links[p.ID] = l
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			l.run()
		}()
	}
	h.mu.Unlock()
	if label == protocol.ChannelCollab {
		l.attachCollab(ch)
	} else {
		l.attachCursors(ch)
	}
}

// Leave ends a participant: its subscriptions close, the others get
// cursorGone and docPresence for the documents it had open.
func (h *Hub) Leave(participantID string) {
	h.mu.Lock()
	l := h.links[participantID]
	if l != nil {
		delete(h.links, participantID)
	}
	h.mu.Unlock()
	if l != nil {
		l.leave(true)
	}
}

// leaveIf is Leave for a link that is still the registered one.
func (h *Hub) leaveIf(l *link) {
	h.mu.Lock()
	if h.links[l.p.ID] != l {
		h.mu.Unlock()
		return
	}
	delete(h.links, l.p.ID)
	h.mu.Unlock()
	l.leave(true)
}

// Close ends every participant and waits for all the hub's goroutines.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	links := h.links
	h.links = map[string]*link{}
	h.mu.Unlock()
	for _, l := range links {
		l.leave(false)
	}
	h.cancel()
	h.wg.Wait()
	h.sessions.Close()
}
