package protocol

// Presence message types.
const (
	TypeSetPresence = "setPresence" // client: away/online and custom status
	TypeTyping      = "typing"      // both: typing indicator (ephemeral)
	TypePresence    = "presence"    // server: someone's presence changed (a room event)
)

// Presence states.
const (
	PresenceOnline  = "online"
	PresenceAway    = "away"
	PresenceOffline = "offline"
)

// Limits on presence input.
const (
	MaxStatusLen = 128 // code points of a custom status
	// TypingTTLMillis is how long a typing indicator lasts unless renewed.
	TypingTTLMillis = 6000
)

// Presence is a participant's availability. It is embedded in Participant
// and carried by the presence event.
type Presence struct {
	State  string `json:"state"`            // online, away or offline
	Status string `json:"status,omitempty"` // custom status text
	// Reconnecting: the connection dropped without a leave; the
	// participant may resume within the grace period.
	Reconnecting bool `json:"reconnecting,omitempty"`
	// LastSeen is when the server last heard from them (Unix ms); set
	// when State is away or offline.
	LastSeen int64 `json:"lastSeen,omitempty"`
}

// SetPresence changes the sender's own presence. State is "online" or
// "away"; Status replaces the custom status ("" clears it).
type SetPresence struct {
	State  string `json:"state"`
	Status string `json:"status"`
}

// PresenceChanged tells the room one participant's presence.
type PresenceChanged struct {
	ParticipantID string `json:"participantId"`
	Presence
}

// Typing from a client says it is typing (or stopped). From the server it
// carries the participant and lasts ExpiresIn ms unless renewed.
type Typing struct {
	Typing        bool   `json:"typing"`
	ParticipantID string `json:"participantId,omitempty"`
	ExpiresIn     int    `json:"expiresIn,omitempty"`
}

func init() {
	register(TypeSetPresence, func() any { return &SetPresence{} })
	register(TypeTyping, func() any { return &Typing{} })
	register(TypePresence, func() any { return &PresenceChanged{} })
}
