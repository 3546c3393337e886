// Package signaling is Huddle's control plane: the WebSocket protocol of
// signaling/protocol, rooms and participants (presence, chat, resume,
// limits). It drives the media plane (package sfu) for each participant.
// A node (package node) assembles it with its collaborators and serves
// HTTP.
package signaling

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/datachannel"
	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Config is the protocol's settings and the collaborators the node gives
// the rooms. Zero values mean the defaults of the design brief. A node
// takes the settings as node.Config.Signaling and supplies the rest.
type Config struct {
	APIKeys auth.Keys // tokens are verified with these; required
	// DevMode: the keys are a generated dev key, so a WebSocket's Host
	// must be a localhost name or an address (origin.go).
	DevMode bool
	Logger  *slog.Logger

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

	// Collaborators, from the node.
	Media      *sfu.Engine           // required
	Documents  *datachannel.Hub      // required: documents over data channels
	Chat       ChatStore             // required
	Events     *admin.Bus            // room events for the admin API and webhooks; default a bus of 1024
	Registerer prometheus.Registerer // default a registry of its own
	// ICEServers are the STUN/TURN servers (with TURN credentials) for one
	// identity that reached the node at host; nil gives none.
	ICEServers func(host, identity string) []protocol.ICEServer
	// OnRoomEmpty is told when a room's last participant has left and the
	// room is gone from this node (cluster mode releases it).
	OnRoomEmpty func(room string)
	// Router, in cluster mode, says which node serves a room; a join for
	// a room of another node is relayed there (relay.go). Nil: every room
	// is served here.
	Router Router
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Events == nil {
		c.Events = admin.NewBus(1024)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
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
	defDur(&c.PingInterval, protocol.PingInterval)
	defDur(&c.PongTimeout, 20*time.Second)
	defDur(&c.JoinTimeout, 10*time.Second)
	defDur(&c.ResumeGrace, 30*time.Second)
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
	return c
}
