// Package signaling is Huddle's control plane and the server's front door:
// the HTTP server (page, health, metrics, dev tokens), the WebSocket
// protocol of signaling/protocol, rooms and participants. It drives the
// media plane (package sfu) for each participant.
package signaling

import (
	"log/slog"
	"time"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
	"github.com/huddle-rtc/huddle/turn"
	"github.com/huddle-rtc/huddle/webhook"
)

// Config is everything `huddle serve` can be told. Zero values mean the
// defaults of the design brief.
type Config struct {
	HTTPAddr     string    // HTTP + WebSocket; default ":7880"
	MediaUDPAddr string    // the one UDP port for all media; default ":7882"
	MediaTCPAddr string    // ICE-TCP fallback; default ":7882"; "off" disables
	PublicIPs    []string  // addresses to advertise in ICE candidates (1:1 NAT)
	DataDir      string    // default "./huddle-data"
	APIKeys      auth.Keys // no keys: dev mode
	// ICEServers are extra STUN/TURN servers handed to every client.
	ICEServers []protocol.ICEServer
	// TURN configures the embedded relay (or an external one with the same
	// shared-secret scheme). Nil runs no relay; `huddle serve` turns it on
	// by default. Every participant gets credentials of its own at join.
	TURN   *turn.Config
	Logger *slog.Logger

	PingInterval time.Duration // default 5s
	// PongTimeout: a connection silent this long (no message, no pong) is
	// dropped and its participant shown offline; default 20s.
	PongTimeout time.Duration
	JoinTimeout time.Duration // default 10s: time to send the join
	// ResumeGrace is how long a dropped participant keeps its place (id,
	// tracks, documents) for a resume; default 30s.
	ResumeGrace time.Duration
	// AllowedOrigins are the browser origins (scheme://host[:port]) that
	// may open WebSockets besides the page's own origin.
	AllowedOrigins []string
	// HTTPIdleTimeout closes idle keep-alive HTTP connections; default 60s.
	HTTPIdleTimeout time.Duration
	// ShutdownTimeout bounds a graceful shutdown; default 10s.
	ShutdownTimeout time.Duration

	// Limits. Zero means the default; see withDefaults.
	MaxParticipants int     // per room; default 200
	MessageRate     float64 // messages a second per connection; default 50
	MessageBurst    int     // default 200
	JoinRate        float64 // WebSocket connections a second per address; default 20 (negative: no limit)
	JoinBurst       int     // default 100
	SendQueueLen    int     // messages waiting for one client; default 512
	SendQueueBytes  int     // bytes waiting for one client; default 4 MiB
	EventLogLen     int     // room events kept for resumes; default 1024
	EventLogBytes   int     // default 1 MiB

	// MediaInterfaces, when set, limit the media candidates to these
	// network interfaces' addresses (e.g. eth0 but not docker0).
	MediaInterfaces []string

	// The admin event stream (docs/ADMIN.md).
	EventHistory   int           // events kept for stream resumes (Last-Event-ID); default 1024
	EventHeartbeat time.Duration // comment sent on an idle event stream; default 15s

	// Webhooks, when it names URLs, POSTs every room event to them
	// (package webhook). Key and Secret default to the server's first API
	// key (the smallest name), the one the admin API mints with.
	Webhooks *webhook.Config

	// MediaBaseline swaps the SFU for a naive Pion forwarder; for
	// `huddle bench sfu --baseline` only (see sfu.Config.Baseline).
	MediaBaseline bool
	// MediaNoGSO sends one packet per system call even where the kernel
	// has UDP GSO (sfu.Config.NoGSO); for measuring.
	MediaNoGSO bool

	// DocStore and ChatStore, when set, replace the bbolt files in DataDir
	// (a collab.RedisStore and a RedisChatStore in cluster mode, or in
	// tests that make the store fail). They stay the caller's: the server
	// does not close them.
	DocStore  collab.Store
	ChatStore ChatStore
}

// Defaults of the design brief.
const (
	DefaultHTTPAddr  = ":7880"
	DefaultMediaAddr = ":7882"
	DefaultDataDir   = "./huddle-data"
)

func (c Config) withDefaults() Config {
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.MediaUDPAddr == "" {
		c.MediaUDPAddr = DefaultMediaAddr
	}
	switch c.MediaTCPAddr {
	case "":
		c.MediaTCPAddr = DefaultMediaAddr
	case "off":
		c.MediaTCPAddr = ""
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 5 * time.Second
	}
	if c.PongTimeout <= 0 {
		c.PongTimeout = 20 * time.Second
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = 10 * time.Second
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&c.ResumeGrace, 30*time.Second)
	defDur(&c.HTTPIdleTimeout, 60*time.Second)
	defDur(&c.ShutdownTimeout, 10*time.Second)
	def(&c.MaxParticipants, 200)
	def(&c.MessageBurst, 200)
	def(&c.JoinBurst, 100)
	def(&c.SendQueueLen, 512)
	def(&c.SendQueueBytes, 4<<20)
	def(&c.EventLogLen, 1024)
	def(&c.EventLogBytes, 1<<20)
	if c.MessageRate <= 0 {
		c.MessageRate = 50
	}
	if c.JoinRate == 0 {
		c.JoinRate = 20
	}
	if c.EventHistory <= 0 {
		c.EventHistory = 1024
	}
	return c
}
