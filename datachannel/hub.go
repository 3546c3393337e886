// Package datachannel is the transport of Huddle's shared documents: it
// routes the "collab" and "cursors" data channels that every client opens
// on its publisher PeerConnection to the document service (package
// collab), following the wire protocol of docs/PROTOCOL.md ("Shared
// documents") and the types of signaling/protocol.
//
// Per participant there is one reader per channel (Pion's OnMessage, with
// a Reassembler for chunk frames), one goroutine that handles collab
// requests in order, one that reports submit results in order, one that
// forwards coalesced cursors, one forwarder per open document and one
// writer with a queue bounded by bytes. The writer hands frames to the
// channel only while its buffered amount is under a high-water mark, so a
// slow peer never grows server memory without bound: when the queue is
// full a document subscription's pending ops are dropped and the client
// is told `lagging` (it reopens and catches up); when even answers do not
// fit, the participant's data channels are closed.
package datachannel

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Participant is who owns a pair of data channels, as signaling knows it.
type Participant struct {
	ID       string // participant id (unique per connection)
	Identity string // token subject: the author of ops, per-author undo
	Name     string
	Room     string
	Color    string // derived from ID when empty
	CanEdit  bool   // editDocs grant
	IsAdmin  bool   // roomAdmin grant
}

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

// Hub routes every participant's document channels to one collab.Service.
type Hub struct {
	svc *collab.Service
	cfg Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	peers  map[string]*peer  // by participant id
	rooms  map[string]string // document id -> room, learnt from the service

	queued        atomic.Int64 // bytes queued for all participants
	peak          atomic.Int64 // most bytes ever queued for one participant
	metricLagging atomic.Int64 // subscriptions dropped as lagging
}

// NewHub returns a hub with the default limits.
func NewHub(svc *collab.Service, log *slog.Logger) *Hub {
	return New(svc, Config{Logger: log})
}

// New returns a hub configured by cfg.
func New(svc *collab.Service, cfg Config) *Hub {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{
		svc: svc, cfg: cfg, log: cfg.Logger,
		ctx: ctx, cancel: cancel,
		peers: map[string]*peer{}, rooms: map[string]string{},
	}
}

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
	n := len(h.peers)
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
	if p.Color == "" {
		p.Color = colorFor(p.ID)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = ch.Close()
		return
	}
	pr := h.peers[p.ID]
	if pr == nil {
		pr = newPeer(h, p)
		h.peers[p.ID] = pr
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			pr.run()
		}()
	}
	h.mu.Unlock()
	if label == protocol.ChannelCollab {
		pr.attachCollab(ch)
	} else {
		pr.attachCursors(ch)
	}
}

// Leave ends a participant: its subscriptions close, the others get
// cursorGone and docPresence for the documents it had open.
func (h *Hub) Leave(participantID string) {
	h.mu.Lock()
	pr := h.peers[participantID]
	if pr != nil {
		delete(h.peers, participantID)
	}
	h.mu.Unlock()
	if pr != nil {
		pr.leave(true)
	}
}

// leaveIf is Leave for a peer that is still the registered one.
func (h *Hub) leaveIf(pr *peer) {
	h.mu.Lock()
	if h.peers[pr.p.ID] != pr {
		h.mu.Unlock()
		return
	}
	delete(h.peers, pr.p.ID)
	h.mu.Unlock()
	pr.leave(true)
}

// Close ends every participant and waits for all the hub's goroutines.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	peers := h.peers
	h.peers = map[string]*peer{}
	h.mu.Unlock()
	for _, pr := range peers {
		pr.leave(false)
	}
	h.cancel()
	h.wg.Wait()
}

// roomOf returns the room of a document, asking the service once.
func (h *Hub) roomOf(ctx context.Context, doc string) (string, error) {
	h.mu.Lock()
	room, ok := h.rooms[doc]
	h.mu.Unlock()
	if ok {
		return room, nil
	}
	meta, err := h.svc.Doc(ctx, doc)
	if err != nil {
		return "", err
	}
	h.mu.Lock()
	h.rooms[doc] = meta.Room
	h.mu.Unlock()
	return meta.Room, nil
}

func (h *Hub) forgetDoc(doc string) {
	h.mu.Lock()
	delete(h.rooms, doc)
	h.mu.Unlock()
}

// roomPeers lists the peers of a room.
func (h *Hub) roomPeers(room string) []*peer {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*peer
	for _, pr := range h.peers {
		if pr.p.Room == room {
			out = append(out, pr)
		}
	}
	return out
}

// editors lists who has doc open in room, sorted; under h.mu.
func (h *Hub) editorsLocked(room, doc string) []string {
	var ids []string
	for _, pr := range h.peers {
		if pr.p.Room == room && pr.docs[doc] != nil {
			ids = append(ids, pr.p.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

// broadcastPresence tells the room who has doc open.
func (h *Hub) broadcastPresence(room, doc string) {
	h.mu.Lock()
	ids := h.editorsLocked(room, doc)
	h.mu.Unlock()
	if ids == nil {
		ids = []string{}
	}
	msg := mustEncode(&protocol.DocPresence{Type: protocol.DocTypePresence, Doc: doc, Participants: ids})
	for _, pr := range h.roomPeers(room) {
		pr.sendControl(msg)
	}
}

// broadcastCursorGone tells the others who have doc open that who's cursor
// is gone.
func (h *Hub) broadcastCursorGone(room, doc, who string) {
	msg := mustEncode(&protocol.Cursor{Type: protocol.DocTypeCursorGone, Doc: doc, Participant: who})
	for _, pr := range h.roomPeers(room) {
		if pr.p.ID != who && pr.hasOpen(doc) {
			pr.sendControl(msg)
		}
	}
}

// docList builds the room's document list.
func (h *Hub) docList(ctx context.Context, room string) ([]protocol.DocInfo, error) {
	metas, err := h.svc.ListDocs(ctx, room)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]protocol.DocInfo, 0, len(metas))
	for _, m := range metas {
		h.rooms[m.ID] = m.Room
		out = append(out, protocol.DocInfo{
			ID: m.ID, Title: m.Title, ReadOnly: m.ReadOnly,
			Created: m.Created.UTC().Format(time.RFC3339),
			Editors: h.editorsLocked(room, m.ID),
		})
	}
	return out, nil
}

// broadcastDocs sends the room's list to everyone in it; the requester's
// copy carries its reqId.
func (h *Hub) broadcastDocs(ctx context.Context, room string, from *peer, reqID, doc string) error {
	docs, err := h.docList(ctx, room)
	if err != nil {
		return err
	}
	all := mustEncode(&protocol.DocList{Type: protocol.DocTypeDocs, Doc: doc, Docs: docs})
	for _, pr := range h.roomPeers(room) {
		if pr == from && reqID != "" {
			pr.sendControl(mustEncode(&protocol.DocList{Type: protocol.DocTypeDocs, ReqID: reqID, Doc: doc, Docs: docs}))
			continue
		}
		pr.sendControl(all)
	}
	return nil
}

// palette holds colours that read well on white and on dark backgrounds.
var palette = []string{
	"#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4",
	"#f032e6", "#469990", "#9a6324", "#800000", "#808000", "#000075",
}

// colorFor derives a stable colour from a participant id.
func colorFor(id string) string {
	f := fnv.New32a()
	_, _ = f.Write([]byte(id))
	return palette[f.Sum32()%uint32(len(palette))]
}

func mustEncode(m any) []byte {
	b, err := encode(m)
	if err != nil {
		panic(fmt.Sprintf("datachannel: encode %T: %v", m, err))
	}
	return b
}
