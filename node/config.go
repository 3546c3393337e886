// Package node is the composition root of one Huddle node: it opens the
// ports (HTTP, media, TURN), the stores (documents, chat, keys), the event
// bus, the admin API and webhooks, and hands the rooms (package signaling)
// their collaborators. `huddle serve` runs one; tests run several
// in-process.
package node

import (
	"log/slog"
	"time"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
	"github.com/huddle-rtc/huddle/turn"
	"github.com/huddle-rtc/huddle/webhook"
)

// Config is everything `huddle serve` can be told. Zero values mean the
// defaults of the design brief. The protocol's settings (timeouts, limits)
// are in Signaling, handed to package signaling unchanged.
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

	// Signaling is the protocol's settings (timeouts, limits, allowed
	// origins), handed to package signaling, which fills in their
	// defaults (signaling.Config). The node supplies the rest of it: its
	// Logger, the API keys and the collaborators are set by Start, so
	// whatever is there is ignored.
	Signaling signaling.Config

	// HTTPIdleTimeout closes idle keep-alive HTTP connections; default 60s.
	HTTPIdleTimeout time.Duration
	// ShutdownTimeout bounds a graceful shutdown; default 10s.
	ShutdownTimeout time.Duration

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
	// (tests that make the store fail, or share one). They stay the
	// caller's: the node does not close them. Cluster mode makes its own
	// in Redis unless these are set.
	DocStore  collab.Store
	ChatStore signaling.ChatStore

	// Redis (redis://host:port/db) turns cluster mode on (docs/CLUSTER.md):
	// membership, room placement and relay through it, documents and chat
	// stored in it. Empty: one node with its embedded store.
	Redis string
	// AdvertiseURL is how other nodes and clients reach this node's HTTP
	// (default URL()); NodeID names it in the cluster (default random).
	AdvertiseURL string
	NodeID       string
	// ClusterTTL: a node that stops refreshing its membership is gone
	// after this long; default 3s.
	ClusterTTL time.Duration
	// ClusterLinkQueueBytes bounds the bytes queued per relay link and
	// direction (cluster.Config.LinkQueueBytes; default 4 MiB).
	ClusterLinkQueueBytes int
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
	if c.HTTPIdleTimeout <= 0 {
		c.HTTPIdleTimeout = 60 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.EventHistory <= 0 {
		c.EventHistory = 1024
	}
	return c
}

// signaling is the rooms' part of the configuration, the protocol's
// settings as given (signaling fills in its own defaults) with the node's
// logger.
func (c Config) signaling() signaling.Config {
	sc := c.Signaling
	sc.Logger = c.Logger
	return sc
}
