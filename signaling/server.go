package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/datachannel"
	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Server is the rooms of one node and the protocol their participants
// speak. Its collaborators (media engine, documents hub, chat store, event
// bus) come from the node that assembles it (package node); the server
// owns its sessions and rooms, and Shutdown waits for them.
type Server struct {
	cfg      Config
	log      *slog.Logger
	keys     auth.Keys
	metrics  *metrics
	media    *sfu.Engine
	hub      *datachannel.Hub
	chat     ChatStore
	events   *admin.Bus
	upgrader websocket.Upgrader

	joins    *joinLimiter
	revoked  revocations // tokens of removed participants
	draining atomic.Bool // shutting down: no new connections

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // sessions and the stats loop
	closeOnce sync.Once

	mu       sync.Mutex
	rooms    map[string]*Room
	sessions map[string]*member    // by session id, for resumes
	relays   map[*session]struct{} // edge sessions relayed to other nodes
	open     map[*session]struct{} // every session served, joined or not
}

// New checks the configuration and starts serving: from here on the node
// may hand it WebSockets (HandleWebSocket) and other transports (Serve).
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	switch {
	case cfg.Media == nil:
		return nil, fmt.Errorf("signaling: no media engine")
	case cfg.Documents == nil:
		return nil, fmt.Errorf("signaling: no documents hub")
	case cfg.Chat == nil:
		return nil, fmt.Errorf("signaling: no chat store")
	case len(cfg.APIKeys) == 0:
		return nil, fmt.Errorf("signaling: no API keys to verify tokens with")
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		keys:     cfg.APIKeys,
		media:    cfg.Media,
		hub:      cfg.Documents,
		chat:     cfg.Chat,
		events:   cfg.Events,
		rooms:    map[string]*Room{},
		sessions: map[string]*member{},
		relays:   map[*session]struct{}{},
		open:     map[*session]struct{}{},
		joins:    newJoinLimiter(cfg.JoinRate, cfg.JoinBurst),
	}
	// Origins are checked before the upgrade (CheckHost). Write buffers
	// come from a pool, so an idle connection holds none.
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	s.metrics = newMetrics(cfg.Registerer)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.runStats()
	return s, nil
}

// Participants is how many participants are in this node's rooms.
func (s *Server) Participants() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.rooms {
		n += r.size()
	}
	return n
}

// Counts are the rooms and participants, for /healthz.
func (s *Server) Counts() (rooms, participants int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rooms {
		participants += r.size()
	}
	return len(s.rooms), participants
}

// Drain refuses new connections from now on.
func (s *Server) Drain() { s.draining.Store(true) }

// Shutdown tells every participant to reconnect (close code 1012 with a
// reason), waits for their sessions until the deadline, then closes the
// rooms and waits for every goroutine of the server. The node closes the
// collaborators afterwards.
func (s *Server) Shutdown(deadline time.Time) {
	s.closeOnce.Do(func() {
		began := time.Now()
		s.draining.Store(true)
		s.mu.Lock()
		rooms := s.rooms
		relays := make([]*session, 0, len(s.relays))
		for sess := range s.relays {
			relays = append(relays, sess)
		}
		open := make([]*session, 0, len(s.open))
		for sess := range s.open {
			open = append(open, sess)
		}
		s.mu.Unlock()
		restart := closeFrame{protocol.CloseServiceRestart, "server restarting: reconnect"}
		for _, r := range rooms {
			r.restart(restart.reason)
		}
		// A session that has not joined yet is in no room: without this
		// it would hold the shutdown until its join deadline. (A session
		// the room has already finished keeps its first close frame.)
		for _, sess := range open {
			sess.finish(restart)
		}
		for _, sess := range relays {
			sess.conn.Interrupt() // a relay's Read ignores deadlines
		}
		// Sessions end once their close frame is out (or their write
		// times out); then nobody is left to wait for.
		for s.openSessions() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		s.log.Info("shutdown: participants told to reconnect", "still_connected", s.openSessions(), "after", time.Since(began))
		s.cancel()
		s.mu.Lock()
		rooms = s.rooms
		s.rooms = map[string]*Room{}
		s.mu.Unlock()
		for _, r := range rooms {
			r.close()
		}
		s.wg.Wait()
	})
}

func (s *Server) openSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// room returns the room of that name, creating it.
func (s *Server) room(name string) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[name]
	if r == nil {
		r = newRoom(s, name)
		s.rooms[name] = r
		s.metrics.rooms.Set(float64(len(s.rooms)))
		s.events.Publish(admin.Event{Type: admin.RoomStarted, Room: name})
	}
	return r
}

// dropRoomIfEmpty forgets a room once its last participant has left.
func (s *Server) dropRoomIfEmpty(r *Room) {
	s.mu.Lock()
	dropped := s.rooms[r.name] == r && r.size() == 0 && !s.draining.Load()
	if dropped {
		delete(s.rooms, r.name)
		s.chat.Forget(r.name)
		s.metrics.rooms.Set(float64(len(s.rooms)))
		r.close()
		s.events.Publish(admin.Event{Type: admin.RoomFinished, Room: r.name})
	}
	s.mu.Unlock()
	if dropped && s.cfg.OnRoomEmpty != nil {
		s.cfg.OnRoomEmpty(r.name)
	}
}

func (s *Server) rememberSession(m *member) {
	s.mu.Lock()
	s.sessions[m.sessionID] = m
	s.mu.Unlock()
}

func (s *Server) forgetSession(m *member) {
	s.mu.Lock()
	if s.sessions[m.sessionID] == m {
		delete(s.sessions, m.sessionID)
	}
	s.mu.Unlock()
}

func (s *Server) lookupSession(id string) *member {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// iceServers are the ICE servers (and TURN credentials) for one identity
// that reached this node at host.
func (s *Server) iceServers(host, identity string) []protocol.ICEServer {
	if s.cfg.ICEServers == nil {
		return []protocol.ICEServer{} // never null on the wire
	}
	return s.cfg.ICEServers(host, identity)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
