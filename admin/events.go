package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Event types. Webhooks carry the same events as the stream.
const (
	RoomStarted         = "room_started"
	RoomFinished        = "room_finished"
	ParticipantJoined   = "participant_joined"
	ParticipantLeft     = "participant_left"
	TrackPublished      = "track_published"
	TrackUnpublished    = "track_unpublished"
	TrackMuted          = "track_muted"
	DocumentCreated     = "document_created"
	DocumentDeleted     = "document_deleted"
	ParticipantsQuality = "participants_quality" // stream only: periodic stats for the dashboard
)

// Event is one thing that happened on the server. ID is server-wide and
// increasing; the stream uses it as the SSE event id.
type Event struct {
	ID          uint64       `json:"id"`
	Type        string       `json:"type"`
	Room        string       `json:"room"`
	Time        int64        `json:"time"` // Unix ms
	Participant *Participant `json:"participant,omitempty"`
	Track       *Track       `json:"track,omitempty"`
	Document    string       `json:"document,omitempty"`
	Stats       []Stats      `json:"stats,omitempty"`
}

// Stats is one participant's media figures at one moment.
type Stats struct {
	ParticipantID string   `json:"participantId"`
	SendBitrate   float64  `json:"sendBps"` // what it publishes, bits/s
	RecvBitrate   float64  `json:"recvBps"` // what is forwarded to it, bits/s
	Layers        []string `json:"layers,omitempty"`
	Quality       string   `json:"quality,omitempty"`
}

// Bus numbers events, keeps the last HistoryLen for resumes and hands each
// to the streams and the sinks (webhooks). Publish never blocks: a stream
// that cannot keep up is ended (its client resumes from the history) and
// sinks must queue without waiting.
type Bus struct {
	historyLen int

	mu      sync.Mutex
	next    uint64
	history []Event
	subs    map[*subscription]struct{}
	sinks   []func(Event)
	closed  bool
}

// subscriptionBuffer bounds each stream's queue of unsent events.
const subscriptionBuffer = 256

type subscription struct {
	room string // "" for every room
	ch   chan Event
}

// NewBus makes a bus keeping historyLen events.
func NewBus(historyLen int) *Bus {
	return &Bus{historyLen: historyLen, subs: map[*subscription]struct{}{}}
}

// AddSink calls fn with every event, in order, under the bus lock: fn
// must not block (webhook.Notifier.Enqueue only queues).
func (b *Bus) AddSink(fn func(Event)) {
	b.mu.Lock()
	b.sinks = append(b.sinks, fn)
	b.mu.Unlock()
}

// Publish numbers e and delivers it.
func (b *Bus) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if e.Time == 0 {
		e.Time = time.Now().UnixMilli()
	}
	if e.Type != ParticipantsQuality {
		// Stats are many and soon stale: they go to the live streams
		// only, without an id (a resume never asks for them).
		b.next++
		e.ID = b.next
		b.history = append(b.history, e)
		if len(b.history) > b.historyLen {
			clear(b.history[:len(b.history)-b.historyLen])
			b.history = append(b.history[:0], b.history[len(b.history)-b.historyLen:]...)
		}
		for _, fn := range b.sinks {
			fn(e)
		}
	}
	for s := range b.subs {
		if s.room != "" && s.room != e.Room {
			continue
		}
		select {
		case s.ch <- e:
		default: // too slow: end its stream; it resumes from the history
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

// subscribe returns the events after lastID (or ok false when the history
// no longer has them all) and a subscription to what follows.
func (b *Bus) subscribe(room string, lastID uint64, resume bool) (replay []Event, complete bool, s *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s = &subscription{room: room, ch: make(chan Event, subscriptionBuffer)}
	if b.closed {
		close(s.ch)
		return nil, true, s
	}
	b.subs[s] = struct{}{}
	if !resume {
		return nil, true, s
	}
	complete = lastID <= b.next && (len(b.history) == 0 && lastID == b.next || len(b.history) > 0 && b.history[0].ID <= lastID+1)
	for _, e := range b.history {
		if e.ID > lastID && (room == "" || e.Room == room) {
			replay = append(replay, e)
		}
	}
	return replay, complete, s
}

func (b *Bus) unsubscribe(s *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.ch)
	}
}

// Close ends every stream (so that an HTTP shutdown need not wait for
// them) and drops later events.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.ch)
	}
}

// DefaultHeartbeat is how often an idle stream sends a comment, so that
// proxies keep it open.
const DefaultHeartbeat = 15 * time.Second

// streamEvents serves a Server-Sent Events stream: every event (or one
// room's) from now, or after Last-Event-ID when the client resumes. When
// the history no longer reaches back that far, a "reset" event says so
// before what remains is replayed.
func (a *API) streamEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, CodeInternal, "streaming unsupported")
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("lastEventId")
	}
	var lastID uint64
	if last != "" {
		n, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeBadRequest, "Last-Event-ID must be an event id")
			return
		}
		lastID = n
	}
	replay, complete, sub := a.events.subscribe(r.PathValue("room"), lastID, last != "")
	defer a.events.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n\n")
	if !complete {
		fmt.Fprintf(w, "event: reset\ndata: {\"reason\":\"history no longer holds the events after %d\"}\n\n", lastID)
	}
	for _, e := range replay {
		writeEvent(w, e)
	}
	flusher.Flush()
	hb := time.NewTicker(a.heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-sub.ch:
			if !ok {
				return
			}
			writeEvent(w, e)
		case <-hb.C:
			fmt.Fprintf(w, ": heartbeat\n\n")
		}
		flusher.Flush()
	}
}

func writeEvent(w http.ResponseWriter, e Event) {
	data, _ := json.Marshal(e)
	if e.ID != 0 {
		fmt.Fprintf(w, "id: %d\n", e.ID)
	}
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, data)
}

// History returns a copy of the events kept for resumes, oldest first.
func (b *Bus) History() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.history...)
}

// Watched reports whether any stream is open: periodic statistics are
// computed only then.
func (b *Bus) Watched() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs) > 0
}

// Streams is how many event streams are open.
func (b *Bus) Streams() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
