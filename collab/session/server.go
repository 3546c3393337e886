// Package session is the server side of Huddle's shared-documents protocol
// (docs/PROTOCOL.md, "Shared documents"), one Session per participant: it
// reads the requests a client sends on its collab channel, checks them
// against the participant's grants, calls the document service (package
// collab) and answers; it forwards each open document's ops and acks,
// keeps document presence and passes cursors on.
//
// It knows nothing of data channels: the transport (package datachannel)
// hands it whole messages in order and gives it an Outbox to answer on and
// a Link for cursors (transport.go). An op's path from the channel to its
// ack reads top to bottom in submit.go and stream.go.
package session

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/internal/ratelog"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Participant is who owns a session, as signaling knows it.
type Participant struct {
	ID       string // participant id (unique per connection)
	Identity string // token subject: the author of ops, per-author undo
	Name     string
	Room     string
	Color    string // derived from ID when empty
	CanEdit  bool   // editDocs grant
	IsAdmin  bool   // roomAdmin grant
}

// Config tunes a session server. Zero values pick the defaults in brackets.
type Config struct {
	Logger *slog.Logger
	// CursorInterval: at most one cursor per participant and document is
	// passed on per interval; faster updates are coalesced [50ms].
	CursorInterval time.Duration
	// PendingSubmits bounds a participant's submits awaiting their result
	// before its requests wait (and the transport stops reading) [1024].
	PendingSubmits int
	// CommentLimits bound comment threads (collab.CommentLimits' defaults).
	CommentLimits collab.CommentLimits
	// PresenceExpiry: a session silent this long leaves document presence
	// [protocol.PresenceExpiry].
	PresenceExpiry time.Duration
}

// Server holds every participant's session, so that presence and document
// lists can be computed and broadcast across them.
type Server struct {
	svc      *collab.Service
	comments *collab.Comments // nil when the store cannot keep comments
	cfg      Config
	log      *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // expireLoop

	mu       sync.Mutex // guards the maps and every session's fields marked "srv.mu"
	sessions map[string]*Session
	rooms    map[string]string // document id -> room, learnt from the service

	presMu    sync.Mutex   // one presence broadcast at a time, so they arrive in the order they were computed
	cursorSeq atomic.Int64 // numbers cursor and cursorGone messages (cursors.go)
}

// NewServer returns a server over svc.
func NewServer(svc *collab.Service, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CursorInterval <= 0 {
		cfg.CursorInterval = 50 * time.Millisecond
	}
	if cfg.PendingSubmits <= 0 {
		cfg.PendingSubmits = 1024
	}
	if cfg.PresenceExpiry <= 0 {
		cfg.PresenceExpiry = protocol.PresenceExpiry
	}
	comments, err := collab.NewComments(svc, cfg.CommentLimits)
	if err != nil {
		cfg.Logger.Warn("documents without comments", "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{svc: svc, comments: comments, cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel,
		sessions: map[string]*Session{}, rooms: map[string]string{}}
	srv.wg.Add(1)
	go srv.expireLoop()
	return srv
}

// Join starts p's session. A session of the same participant id still
// registered is replaced (the caller closes it). Close the session when
// the participant goes, then Wait for it.
func (srv *Server) Join(p Participant, link Link) *Session {
	if p.Color == "" {
		p.Color = colorFor(p.ID)
	}
	s := newSession(srv, p, link)
	srv.mu.Lock()
	srv.sessions[p.ID] = s
	srv.mu.Unlock()
	s.start()
	return s
}

// Session returns the registered session of a participant, or nil.
func (srv *Server) Session(participantID string) *Session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.sessions[participantID]
}

// Close stops the server's own goroutine; sessions are closed by their
// transport.
func (srv *Server) Close() {
	srv.cancel()
	srv.wg.Wait()
}

// roomOf returns the room of a document, asking the service once.
func (srv *Server) roomOf(ctx context.Context, doc string) (string, error) {
	srv.mu.Lock()
	room, ok := srv.rooms[doc]
	srv.mu.Unlock()
	if ok {
		return room, nil
	}
	meta, err := srv.svc.Doc(ctx, doc)
	if err != nil {
		return "", err
	}
	srv.mu.Lock()
	srv.rooms[doc] = meta.Room
	srv.mu.Unlock()
	return meta.Room, nil
}

func (srv *Server) forgetDoc(doc string) {
	srv.mu.Lock()
	delete(srv.rooms, doc)
	srv.mu.Unlock()
}

// roomSessions lists the sessions of a room.
func (srv *Server) roomSessions(room string) []*Session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var out []*Session
	for _, s := range srv.sessions {
		if s.p.Room == room {
			out = append(out, s)
		}
	}
	return out
}

// editorsLocked lists who has doc open in room, sorted; under srv.mu.
func (srv *Server) editorsLocked(room, doc string) []string {
	var ids []string
	for _, s := range srv.sessions {
		if s.p.Room == room && s.docs[doc] != nil && !s.expired.Load() {
			ids = append(ids, s.p.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

// broadcastPresence tells the room who has doc open.
func (srv *Server) broadcastPresence(room, doc string) {
	srv.presMu.Lock()
	defer srv.presMu.Unlock()
	srv.mu.Lock()
	ids := srv.editorsLocked(room, doc)
	srv.mu.Unlock()
	if ids == nil {
		ids = []string{}
	}
	msg := mustEncode(&protocol.DocPresence{Type: protocol.DocTypePresence, Doc: doc, Participants: ids})
	for _, s := range srv.roomSessions(room) {
		s.sendControl(msg)
	}
}

// docList builds the room's document list.
func (srv *Server) docList(ctx context.Context, room string) ([]protocol.DocInfo, error) {
	metas, err := srv.svc.ListDocs(ctx, room)
	if err != nil {
		return nil, err
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	out := make([]protocol.DocInfo, 0, len(metas))
	for _, m := range metas {
		srv.rooms[m.ID] = m.Room
		out = append(out, protocol.DocInfo{
			ID: m.ID, Title: m.Title, ReadOnly: m.ReadOnly,
			Created: rfc3339(m.Created),
			Editors: srv.editorsLocked(room, m.ID),
		})
	}
	return out, nil
}

// broadcastDocs sends the room's list to everyone in it; the requester's
// copy carries its reqId.
func (srv *Server) broadcastDocs(ctx context.Context, room string, from *Session, reqID, doc string) error {
	docs, err := srv.docList(ctx, room)
	if err != nil {
		return err
	}
	all := mustEncode(&protocol.DocList{Type: protocol.DocTypeDocs, Doc: doc, Docs: docs})
	for _, s := range srv.roomSessions(room) {
		if s == from && reqID != "" {
			s.sendControl(mustEncode(&protocol.DocList{Type: protocol.DocTypeDocs, ReqID: reqID, Doc: doc, Docs: docs}))
			continue
		}
		s.sendControl(all)
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

// ColorFor is the colour a participant without one is shown in.
func ColorFor(id string) string { return colorFor(id) }

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func mustEncode(m any) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("session: encode %T: %v", m, err))
	}
	return b
}

func newRateLog(l *slog.Logger) *ratelog.Log { return ratelog.New(l) }
