// Package signaling is Huddle's control plane and the server's front door:
// the HTTP server (page, health, metrics, dev tokens), the WebSocket
// protocol of signaling/protocol, rooms and participants. It drives the
// media plane (package sfu) for each participant.
package signaling

import (
	"log/slog"
	"time"

	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
	"github.com/huddle-rtc/huddle/turn"
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

	PingInterval time.Duration // default 10s
	PongTimeout  time.Duration // default 30s: silent connections are dropped
	JoinTimeout  time.Duration // default 10s: time to send the join

	// MediaBaseline swaps the SFU for a naive Pion forwarder; for
	// `huddle bench sfu --baseline` only (see sfu.Config.Baseline).
	MediaBaseline bool
	// MediaNoGSO sends one packet per system call even where the kernel
	// has UDP GSO (sfu.Config.NoGSO); for measuring.
	MediaNoGSO bool
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
		c.PingInterval = 10 * time.Second
	}
	if c.PongTimeout <= 0 {
		c.PongTimeout = 30 * time.Second
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = 10 * time.Second
	}
	return c
}
