package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/auth"
)

func serve(args []string) error {
	cfg, err := serveConfig(args)
	if err != nil {
		return err
	}
	log, shutdownD := cfg.Logger, cfg.ShutdownTimeout
	srv, err := node.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\n  Huddle is running: open %s\n\n", srv.URL())
	<-ctx.Done()
	// SIGTERM: stop accepting, tell every participant to reconnect (close
	// 1012 with a reason), flush documents and chat, exit. Bounded: a
	// stuck shutdown must not keep an orchestrator waiting for ever.
	log.Info("shutting down: participants are told to reconnect", "timeout", shutdownD)
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case err := <-closed:
		return err
	case <-time.After(shutdownD + 10*time.Second):
		return fmt.Errorf("shutdown did not finish within %s", shutdownD+10*time.Second)
	}
}

// serveConfig reads serve's flags (and the config file and environment
// behind them, flags.go) into the node's configuration. The names users
// see are the flags'; the protocol's settings go to cfg.Signaling.
func serveConfig(args []string) (node.Config, error) {
	f := newEnvFlags("serve")
	httpAddr := f.String("http-addr", node.DefaultHTTPAddr, "HTTP and WebSocket address")
	udpAddr := f.String("media-udp-addr", node.DefaultMediaAddr, "the single UDP address for all media")
	tcpAddr := f.String("media-tcp-addr", node.DefaultMediaAddr, `ICE-TCP fallback address, or "off"`)
	publicIPs := f.String("public-ips", "", "comma-separated addresses to advertise for media (server behind 1:1 NAT)")
	interfaces := f.String("media-interfaces", "", "comma-separated network interfaces whose addresses media candidates offer (default all)")
	stunURL := f.String("stun-discover", "", "at start, ask this STUN server (stun:host:port) for the public address and advertise it")
	dataDir := f.String("data-dir", node.DefaultDataDir, "where documents and keys are kept")
	keys := f.String("api-keys", "", "comma-separated key:secret pairs; none means dev mode")
	logLevel := f.String("log-level", "info", "debug, info, warn or error")
	origins := f.String("allowed-origins", "", "comma-separated browser origins (https://app.example.com) that may open WebSockets besides the page's own")
	grace := f.Duration("resume-grace", 30*time.Second, "how long a dropped participant keeps its place for a resume")
	shutdownTimeout := f.Duration("shutdown-timeout", 10*time.Second, "bound on a graceful shutdown (SIGTERM)")
	maxParticipants := f.Int("max-participants", 200, "participants per room")
	joinsPerSecond := f.Int("joins-per-second", 20, "WebSocket connections a second per client address (burst 5x); -1 for no limit")
	webhookURLs := f.String("webhook-urls", "", "comma-separated URLs that get every room event, signed with the first API key (docs/ADMIN.md)")
	redisURL := f.String("redis", "", "redis://host:port/db: cluster mode (docs/CLUSTER.md); empty runs one node on its embedded store")
	advertiseURL := f.String("advertise-url", "", "cluster mode: this node's URL for other nodes (http://host:port); default from --http-addr")
	nodeID := f.String("node-id", "", "cluster mode: this node's id (default random per start)")
	clusterTTL := f.Duration("cluster-ttl", 3*time.Second, "cluster mode: a node that stops refreshing its membership is gone after this long")
	turnFlags := addTURNFlags(f)
	if err := f.parse(args); err != nil {
		return node.Config{}, err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return node.Config{}, fmt.Errorf("log level %q: %w", *logLevel, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	apiKeys := auth.Keys{}
	for _, kv := range list(*keys) {
		k, s, ok := strings.Cut(kv, ":")
		if !ok || k == "" || s == "" {
			return node.Config{}, fmt.Errorf("api key %q: want key:secret", kv)
		}
		apiKeys[k] = s
	}
	turnCfg, err := turnFlags.config()
	if err != nil {
		return node.Config{}, err
	}
	public, err := publicAddresses(context.Background(), list(*publicIPs), *stunURL, *udpAddr)
	if err != nil {
		return node.Config{}, err
	}
	if *stunURL != "" {
		log.Info("stun discover: advertising the public address", "stun", *stunURL, "public_ips", public)
	}
	if turnCfg != nil && !turnCfg.RelayIP.IsValid() {
		// Behind a 1:1 NAT the relay's candidates need the public address
		// as much as the media's do.
		for _, ip := range public {
			if a := netip.MustParseAddr(ip); a.Is4() {
				turnCfg.RelayIP = a
				break
			}
		}
	}
	return node.Config{
		TURN:            turnCfg,
		HTTPAddr:        *httpAddr,
		MediaUDPAddr:    *udpAddr,
		MediaTCPAddr:    *tcpAddr,
		PublicIPs:       public,
		MediaInterfaces: list(*interfaces),
		DataDir:         *dataDir,
		APIKeys:         apiKeys,
		Logger:          log,
		Signaling: signaling.Config{
			AllowedOrigins:  list(*origins),
			ResumeGrace:     *grace,
			MaxParticipants: *maxParticipants,
			JoinRate:        float64(*joinsPerSecond),
			JoinBurst:       5 * max(*joinsPerSecond, 1),
		},
		ShutdownTimeout: *shutdownTimeout,
		Webhooks:        webhookConfig(*webhookURLs),

		Redis:        *redisURL,
		AdvertiseURL: *advertiseURL,
		NodeID:       *nodeID,
		ClusterTTL:   *clusterTTL,
	}, nil
}
