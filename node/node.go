package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/datachannel"
	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/turn"
	"github.com/huddle-rtc/huddle/web"
	"github.com/huddle-rtc/huddle/webhook"
	"github.com/huddle-rtc/huddle/whip"
)

// Node is one Huddle node: HTTP, signaling, media, TURN and stores. Tests
// start and stop it in-process; `huddle serve` runs one until interrupted.
type Node struct {
	cfg     Config
	log     *slog.Logger
	keys    auth.Keys
	devMode bool
	dev     devKey
	reg     *prometheus.Registry
	metrics *metrics

	media *sfu.Engine
	turn  *turn.Server // nil without a relay
	// Shared documents: the store, the document service and the hub that
	// routes the collab and cursors data channels to it.
	docStore collab.Store
	docs     *collab.Service
	hub      *datachannel.Hub
	chat     signaling.ChatStore
	sig      *signaling.Server // the rooms

	listener net.Listener
	http     *http.Server
	whip     *whip.Server // WHIP and WHEP sessions
	events   *admin.Bus   // room events for the admin stream and webhooks
	webhooks *webhook.Notifier

	// Cluster mode (cluster.go): the Redis client, membership and rooms
	// held; nil on a lone node. relayHost is the advertised host, for the
	// TURN URLs of relayed participants.
	rdb       *redis.Client
	cluster   *clustered
	relayHost string
	ready     chan struct{} // closed once the rooms (sig) exist

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the HTTP server and room moves
	closeOnce sync.Once
}

// New checks the configuration and prepares the data directory. Nothing
// listens until Start.
func New(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	n := &Node{
		cfg:    cfg,
		log:    cfg.Logger,
		keys:   cfg.APIKeys,
		reg:    prometheus.NewRegistry(),
		events: admin.NewBus(cfg.EventHistory),
		ready:  make(chan struct{}),
	}
	if cfg.Redis != "" {
		if _, err := redis.ParseURL(cfg.Redis); err != nil {
			return nil, fmt.Errorf("cluster mode: redis url %q: %w", cfg.Redis, err)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	if len(n.keys) == 0 {
		k, err := loadOrCreateDevKey(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		n.devMode, n.dev = true, k
		n.keys = auth.Keys{k.Key: k.Secret}
	}
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.metrics = newMetrics(n.reg)
	n.registerAdminMetrics()
	return n, nil
}

// Start opens every port and serves in the background until Close or ctx
// ends. On an error, what it opened is closed again. It is long because the
// order of its steps matters (listener before cluster, rooms before
// serving) and one deferred unwinding covers them all.
func (n *Node) Start(ctx context.Context) (err error) {
	// The node's own context ends only after a graceful shutdown; the
	// caller's ctx ending starts one.
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.closeParts()
			n.closeCluster()
			n.cancel()
			n.cancel = nil // Close has nothing left to do
		}
	}()
	n.media, err = sfu.NewEngine(sfu.Config{
		UDPAddr:    n.cfg.MediaUDPAddr,
		TCPAddr:    n.cfg.MediaTCPAddr,
		PublicIPs:  n.cfg.PublicIPs,
		Interfaces: n.cfg.MediaInterfaces,
		Logger:     n.log.With("part", "sfu"),
		Baseline:   n.cfg.MediaBaseline,
		NoGSO:      n.cfg.MediaNoGSO,
		Registerer: n.reg,
	})
	if err != nil {
		return fmt.Errorf("start media: %w", err)
	}
	// The listener opens before the cluster is joined: its address is
	// advertised. Nothing is served until the end of Start.
	if n.listener, err = net.Listen("tcp", n.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("start http on %s: %w", n.cfg.HTTPAddr, err)
	}
	if n.cfg.Redis != "" {
		if err := n.joinCluster(ctx); err != nil {
			return err
		}
	}
	if err := n.startDocs(); err != nil {
		return err
	}
	if err := n.openChat(); err != nil {
		return err
	}
	if n.cfg.TURN != nil {
		if n.turn, err = n.startTURN(n.media); err != nil {
			return err
		}
	}
	// The settings are the caller's; every collaborator is the node's,
	// whatever cfg.Signaling held (a Router only in cluster mode).
	sc := n.cfg.signaling()
	sc.APIKeys, sc.DevMode = n.keys, n.devMode
	sc.Media, sc.Documents, sc.Chat, sc.Events = n.media, n.hub, n.chat, n.events
	sc.Registerer = n.reg
	sc.ICEServers = n.iceServersFor
	sc.Router, sc.OnRoomEmpty = nil, nil
	if n.cluster != nil {
		sc.Router, sc.OnRoomEmpty = n, n.maybeRelease
	}
	if n.sig, err = signaling.New(sc); err != nil {
		return fmt.Errorf("start signaling: %w", err)
	}
	close(n.ready)

	mux := http.NewServeMux()
	mux.Handle("GET /", web.Handler())
	mux.HandleFunc("GET /ws", n.sig.HandleWebSocket)
	mux.HandleFunc("GET /healthz", n.handleHealth)
	mux.HandleFunc("GET /api/dev/token", n.handleDevToken)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	n.whip = n.startWHIP()
	n.whip.Mount(mux)
	admin.New(n.sig, n.keys, n.events, n.cfg.EventHeartbeat).Mount(mux)
	n.startWebhooks()
	n.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       n.cfg.HTTPIdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return n.ctx },
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.http.Serve(n.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
	n.wg.Add(1)
	go func() { // ctx ending is the same as Close
		defer n.wg.Done()
		select {
		case <-ctx.Done():
			go n.shutdown() // shutdown waits for this goroutine
		case <-n.ctx.Done():
		}
	}()

	if n.devMode {
		n.log.Warn("DEV MODE: no API keys configured. A key was generated; anyone on this machine can get tokens from /api/dev/token. Configure keys before exposing this server.",
			"api_key", n.dev.Key, "api_secret", n.dev.Secret, "key_from", n.devKeySource())
	}
	n.logAddresses(n.media)
	return nil
}

// devKeySource says where dev mode's key is kept.
func (n *Node) devKeySource() string {
	if n.rdb != nil {
		return "redis " + devKeyKey + " (shared by the cluster)"
	}
	return n.cfg.DataDir + "/" + devKeyFile
}

// Signaling is the node's rooms (for tests and tools).
func (n *Node) Signaling() *signaling.Server { return n.sig }

// TURN is the relay, or nil when none runs.
func (n *Node) TURN() *turn.Server { return n.turn }

// URL is the address to open in a browser, e.g. http://127.0.0.1:7880.
func (n *Node) URL() string {
	addr := n.listener.Addr().(*net.TCPAddr)
	host := "localhost"
	if !addr.IP.IsUnspecified() {
		host = addr.IP.String()
	}
	return fmt.Sprintf("http://%s", net.JoinHostPort(host, fmt.Sprint(addr.Port)))
}

// Addr is the bound HTTP address.
func (n *Node) Addr() net.Addr { return n.listener.Addr() }

// DevKey returns dev mode's API key and secret, and whether dev mode is on.
func (n *Node) DevKey() (key, secret string, ok bool) {
	return n.dev.Key, n.dev.Secret, n.devMode
}

// MediaUDPAddr is the bound media UDP port.
func (n *Node) MediaUDPAddr() net.Addr { return n.media.UDPAddr() }

// TrackPacketsReceived is how many RTP packets of a published track this
// node has read from its publisher (signaling.Server.TrackPacketsReceived).
func (n *Node) TrackPacketsReceived(room, trackID string) (uint64, bool) {
	return n.sig.TrackPacketsReceived(room, trackID)
}

// SubscribedVideo is how this node sends a track to a subscriber
// (signaling.Server.SubscribedVideo).
func (n *Node) SubscribedVideo(room, subscriberID, trackID string) (sfu.SubscribedVideo, bool) {
	return n.sig.SubscribedVideo(room, subscriberID, trackID)
}

// Close shuts down gracefully: it stops accepting, tells every participant
// to reconnect (close code 1012 with a reason), waits for them within
// ShutdownTimeout, flushes documents and chat to disk and releases every
// port.
func (n *Node) Close() error {
	if n.cancel == nil {
		return nil
	}
	n.shutdown()
	return nil
}

func (n *Node) shutdown() {
	n.closeOnce.Do(func() {
		began := time.Now()
		deadline := began.Add(n.cfg.ShutdownTimeout)
		n.sig.Drain()
		n.events.Close() // ends the event streams, which Shutdown would wait for
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		_ = n.http.Shutdown(ctx) // stops accepting; hijacked WebSockets are the rooms'
		n.whip.Close()
		n.sig.Shutdown(deadline)
		n.cancel()
		n.wg.Wait()
		n.closeParts()
		n.closeCluster()
		n.log.Info("shutdown: media closed, documents and chat flushed", "after", time.Since(began))
	})
}

// closeParts closes what Start opened, in order: webhooks, media, then
// documents (every acked op is durable) and chat, then TURN. It runs after
// the sessions have ended (or when Start failed half-way).
func (n *Node) closeParts() {
	if n.webhooks != nil {
		n.webhooks.Close()
	}
	if n.media != nil {
		if err := n.media.Close(); err != nil {
			n.log.Warn("close media", "err", err)
		}
	}
	n.closeDocs()
	if n.chat != nil && n.chat != n.cfg.ChatStore { // the caller's is not ours to close
		if err := n.chat.Close(); err != nil {
			n.log.Warn("close chat", "err", err)
		}
	}
	if n.turn != nil {
		if err := n.turn.Close(); err != nil {
			n.log.Warn("close turn", "err", err)
		}
	}
	if n.listener != nil && n.http == nil {
		n.listener.Close()
	}
}

func (n *Node) handleHealth(w http.ResponseWriter, _ *http.Request) {
	rooms, people := n.sig.Counts()
	body := map[string]any{"status": "ok", "devMode": n.devMode, "rooms": rooms, "participants": people}
	if n.cluster != nil {
		body["cluster"] = n.clusterHealth()
	}
	if n.devMode {
		body["warning"] = "dev mode: no API keys configured, tokens are minted for loopback clients"
	}
	writeJSON(w, http.StatusOK, body)
}
