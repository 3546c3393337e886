package signaling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/datachannel"
	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/turn"
	"github.com/huddle-rtc/huddle/web"
	"github.com/huddle-rtc/huddle/webhook"
	"github.com/huddle-rtc/huddle/whip"
)

// Server is a whole Huddle node: HTTP, signaling and media. Tests start and
// stop it in-process; `huddle serve` runs one until interrupted.
type Server struct {
	cfg     Config
	log     *slog.Logger
	keys    auth.Keys
	devMode bool
	dev     devKey
	metrics *metrics
	reg     *prometheus.Registry

	media *sfu.Engine
	turn  *turn.Server // nil without a relay
	// Shared documents: the store, the document service and the hub that
	// routes the collab and cursors data channels to it.
	docStore   *collab.BoltStore // nil when Config.DocStore is set
	docs       *collab.Service
	hub        *datachannel.Hub
	docMetrics bool
	listener   net.Listener
	http       *http.Server
	whip       *whip.Server // WHIP and WHEP sessions
	upgrader   websocket.Upgrader

	chat     *chatStore
	joins    *joinLimiter
	events   *admin.Bus // room events for the admin stream and webhooks (admin.go)
	webhooks *webhook.Notifier
	revoked  revocations  // tokens of removed participants
	draining atomic.Bool  // shutting down: no new connections
	conns    atomic.Int64 // open WebSocket connections

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // sessions and the HTTP server
	closeOnce sync.Once

	mu       sync.Mutex
	rooms    map[string]*Room
	sessions map[string]*member // by session id, for resumes
}

// New checks the configuration and prepares the data directory. Nothing
// listens until Start.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		keys:     cfg.APIKeys,
		rooms:    map[string]*Room{},
		sessions: map[string]*member{},
		reg:      prometheus.NewRegistry(),
		joins:    newJoinLimiter(cfg.JoinRate, cfg.JoinBurst),
		events:   admin.NewBus(cfg.EventHistory),
	}
	// Origins are checked before the upgrade (checkHost). Write buffers
	// come from a pool, so an idle connection holds none.
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	if len(s.keys) == 0 {
		k, err := loadOrCreateDevKey(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		s.devMode, s.dev = true, k
		s.keys = auth.Keys{k.Key: k.Secret}
	}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = newMetrics(s.reg)
	s.registerAdminMetrics()
	return s, nil
}

// Start opens every port and serves in the background until Close or ctx
// ends.
func (s *Server) Start(ctx context.Context) error {
	media, err := sfu.NewEngine(sfu.Config{
		UDPAddr:    s.cfg.MediaUDPAddr,
		TCPAddr:    s.cfg.MediaTCPAddr,
		PublicIPs:  s.cfg.PublicIPs,
		Interfaces: s.cfg.MediaInterfaces,
		Logger:     s.log.With("part", "sfu"),
		Baseline:   s.cfg.MediaBaseline,
		NoGSO:      s.cfg.MediaNoGSO,
		Registerer: s.reg,
	})
	if err != nil {
		return fmt.Errorf("start media: %w", err)
	}
	if err := s.startDocs(); err != nil {
		media.Close()
		return err
	}
	chat, err := openChatStore(filepath.Join(s.cfg.DataDir, "chat.db"), s.cfg.ChatStore)
	if err != nil {
		media.Close()
		s.closeDocs()
		return err
	}
	s.chat = chat
	// The server's own context ends only after a graceful shutdown; the
	// caller's ctx ending starts one.
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.cfg.TURN != nil {
		relay, err := s.startTURN(media)
		if err != nil {
			s.cancel()
			media.Close()
			s.closeDocs()
			return err
		}
		s.turn = relay
	}
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		s.cancel()
		media.Close()
		if s.turn != nil {
			s.turn.Close()
		}
		s.closeDocs()
		s.chat.close()
		return fmt.Errorf("start http on %s: %w", s.cfg.HTTPAddr, err)
	}
	s.media, s.listener = media, ln

	mux := http.NewServeMux()
	mux.Handle("GET /", web.Handler())
	mux.HandleFunc("GET /ws", s.handleWebSocket)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /api/dev/token", s.handleDevToken)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.whip = s.startWHIP()
	s.whip.Mount(mux)
	admin.New(s, s.keys, s.events, s.cfg.EventHeartbeat).Mount(mux)
	s.startWebhooks()
	s.wg.Add(1)
	go s.runStats()
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       s.cfg.HTTPIdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	go func() { // ctx ending is the same as Close
		select {
		case <-ctx.Done():
			s.shutdown()
		case <-s.ctx.Done():
		}
	}()

	if s.devMode {
		s.log.Warn("DEV MODE: no API keys configured. A key was generated; anyone on this machine can get tokens from /api/dev/token. Configure keys before exposing this server.",
			"api_key", s.dev.Key, "api_secret", s.dev.Secret, "key_file", s.cfg.DataDir+"/"+devKeyFile)
	}
	s.logAddresses(media)
	return nil
}

// startDocs opens the document store in the data directory, the document
// service and the data-channel hub.
func (s *Server) startDocs() error {
	var store collab.Store = s.cfg.DocStore
	var bolt *collab.BoltStore
	if store == nil {
		var err error
		if bolt, err = collab.OpenBoltStore(filepath.Join(s.cfg.DataDir, "docs"), 0); err != nil {
			return fmt.Errorf("start documents: %w", err)
		}
		store = bolt
	}
	svc, err := collab.NewService(collab.Config{Store: store, Logger: s.log.With("part", "collab"), OnDocChange: s.docChanged, OnCommit: s.metrics.docCommitted})
	if err != nil {
		if bolt != nil {
			bolt.Close()
		}
		return fmt.Errorf("start documents: %w", err)
	}
	s.docStore, s.docs = bolt, svc
	hub := datachannel.NewHub(svc, s.log.With("part", "datachannel"))
	s.hub = hub
	if !s.docMetrics {
		s.docMetrics = true // a restarted Server keeps its registry
		s.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "huddle_datachannel_queued_bytes", Help: "Document messages waiting for slow data channels."},
				func() float64 { return float64(s.hubStats().QueuedBytes) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "huddle_datachannel_lagging_total", Help: "Document streams dropped because a participant fell behind."},
				func() float64 { return float64(s.hubStats().Lagging) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "huddle_documents_open", Help: "Documents loaded in memory."},
				func() float64 {
					if s.docs == nil {
						return 0
					}
					return float64(s.docs.OpenDocs())
				}),
		)
	}
	return nil
}

// closeDocs stops the hub, then the service (every acked op is durable),
// then the store. It runs after the sessions have ended.
func (s *Server) closeDocs() {
	if s.hub != nil {
		s.hub.Close()
	}
	if s.docs != nil {
		_ = s.docs.Close()
	}
	if s.docStore != nil {
		if err := s.docStore.Close(); err != nil {
			s.log.Warn("close document store", "err", err)
		}
	}
}

func (s *Server) hubStats() datachannel.Stats {
	if s.hub == nil {
		return datachannel.Stats{}
	}
	return s.hub.Stats()
}

// Documents is the document service (for tests and tools).
func (s *Server) Documents() *collab.Service { return s.docs }

// DocumentHub is the data-channel hub of the documents (for tests and
// tools: Leave cuts a participant's documents session off).
func (s *Server) DocumentHub() *datachannel.Hub { return s.hub }

// startTURN starts the relay with the SFU's media addresses as the peers
// it may always reach.
func (s *Server) startTURN(media *sfu.Engine) (*turn.Server, error) {
	cfg := *s.cfg.TURN
	if cfg.Logger == nil {
		cfg.Logger = s.log.With("part", "turn")
	}
	cfg.Registerer = s.reg
	for _, a := range []net.Addr{media.UDPAddr(), media.TCPAddr()} {
		if a == nil {
			continue
		}
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return nil, fmt.Errorf("turn: sfu address %s: %w", a, err)
		}
		cfg.SFUAddrs = append(cfg.SFUAddrs, ap)
	}
	relay, err := turn.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("start turn: %w", err)
	}
	if err := relay.Start(s.ctx); err != nil {
		return nil, fmt.Errorf("start turn: %w", err)
	}
	return relay, nil
}

// TURN is the relay, or nil when none runs.
func (s *Server) TURN() *turn.Server { return s.turn }

// URL is the address to open in a browser, e.g. http://127.0.0.1:7880.
func (s *Server) URL() string {
	addr := s.listener.Addr().(*net.TCPAddr)
	host := "localhost"
	if !addr.IP.IsUnspecified() {
		host = addr.IP.String()
	}
	return fmt.Sprintf("http://%s", net.JoinHostPort(host, fmt.Sprint(addr.Port)))
}

// DevKey returns dev mode's API key and secret, and whether dev mode is on.
func (s *Server) DevKey() (key, secret string, ok bool) {
	return s.dev.Key, s.dev.Secret, s.devMode
}

// MediaUDPAddr is the bound media UDP port.
func (s *Server) MediaUDPAddr() net.Addr { return s.media.UDPAddr() }

// Close shuts down gracefully: it stops accepting, tells every participant
// to reconnect (close code 1012 with a reason), waits for them within
// ShutdownTimeout, flushes documents and chat to disk and releases every
// port.
func (s *Server) Close() error {
	if s.cancel == nil {
		return nil
	}
	s.shutdown()
	return nil
}

func (s *Server) shutdown() {
	s.closeOnce.Do(func() {
		began := time.Now()
		deadline := began.Add(s.cfg.ShutdownTimeout)
		s.draining.Store(true)
		s.events.Close() // ends the event streams, which Shutdown would wait for
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		_ = s.http.Shutdown(ctx) // stops accepting; hijacked WebSockets are ours
		s.whip.Close()
		s.mu.Lock()
		rooms := s.rooms
		s.mu.Unlock()
		for _, r := range rooms {
			r.restart("server restarting: reconnect")
		}
		// Sessions end once their close frame is out (or their write
		// times out); then nobody is left to wait for.
		for s.conns.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		s.log.Info("shutdown: participants told to reconnect", "still_connected", s.conns.Load(), "after", time.Since(began))
		s.cancel()
		s.mu.Lock()
		rooms = s.rooms
		s.rooms = map[string]*Room{}
		s.mu.Unlock()
		for _, r := range rooms {
			r.close()
		}
		s.wg.Wait()
		if s.webhooks != nil {
			s.webhooks.Close()
		}
		if err := s.media.Close(); err != nil {
			s.log.Warn("close media", "err", err)
		}
		s.log.Info("shutdown: media closed", "after", time.Since(began))
		s.closeDocs()
		s.chat.close()
		s.log.Info("shutdown: documents and chat flushed", "after", time.Since(began))
		if s.turn != nil {
			if err := s.turn.Close(); err != nil {
				s.log.Warn("close turn", "err", err)
			}
		}
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	rooms, people := len(s.rooms), 0
	for _, r := range s.rooms {
		people += r.size()
	}
	s.mu.Unlock()
	body := map[string]any{"status": "ok", "devMode": s.devMode, "rooms": rooms, "participants": people}
	if s.devMode {
		body["warning"] = "dev mode: no API keys configured, tokens are minted for loopback clients"
	}
	writeJSON(w, http.StatusOK, body)
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
	defer s.mu.Unlock()
	if s.rooms[r.name] == r && r.size() == 0 && !s.draining.Load() {
		delete(s.rooms, r.name)
		s.chat.forget(r.name)
		s.metrics.rooms.Set(float64(len(s.rooms)))
		r.close()
		s.events.Publish(admin.Event{Type: admin.RoomFinished, Room: r.name})
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
