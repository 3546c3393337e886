package protocol

// The meeting family: what people do in a call besides sending media (mute,
// raise a hand) and what the server tells the room about it (who speaks,
// whose connection is bad). Kept apart from protocol.go so that the core
// handshake stays short.

// Meeting message types.
const (
	TypeMute              = "mute"              // client: mute or unmute one of its own tracks
	TypeTrackMuted        = "trackMuted"        // server: a track was muted or unmuted
	TypeRaiseHand         = "raiseHand"         // client: raise or lower its hand
	TypeHandRaised        = "handRaised"        // server: a hand went up or down
	TypeSpeakersChanged   = "speakersChanged"   // server: the active speakers, loudest first
	TypeConnectionQuality = "connectionQuality" // server: connection quality of participants
)

// Connection quality levels.
const (
	QualityExcellent = "excellent"
	QualityGood      = "good"
	QualityPoor      = "poor"
)

// Mute asks the server to tell the room that one of the sender's tracks is
// muted (or no longer). The client stops sending the track's media itself
// (a muted video sends nothing, not black frames); this message is what
// lets everyone else show it.
type Mute struct {
	TrackID string `json:"trackId"` // the server's id, from trackPublished
	Muted   bool   `json:"muted"`
}

// TrackMuted tells everyone, the publisher included, a track's new state.
type TrackMuted struct {
	ParticipantID string `json:"participantId"`
	TrackID       string `json:"trackId"`
	Muted         bool   `json:"muted"`
}

// RaiseHand raises or lowers the sender's hand.
type RaiseHand struct {
	Raised bool `json:"raised"`
}

// HandRaised tells everyone, the sender included, a hand's new state.
type HandRaised struct {
	ParticipantID string `json:"participantId"`
	Raised        bool   `json:"raised"`
}

// Speaker is one active speaker. Level is the smoothed loudness from 0
// (silence) to 1 (the loudest a track can report).
type Speaker struct {
	ParticipantID string  `json:"participantId"`
	Level         float64 `json:"level"`
}

// SpeakersChanged lists who is speaking now, loudest first; an empty list
// means nobody is. The server sends it only when the list changes, and at
// most a few times a second.
type SpeakersChanged struct {
	Speakers []Speaker `json:"speakers"`
}

// Quality is one participant's connection as the server measures it, over
// both of its PeerConnections (the worse direction decides).
type Quality struct {
	ParticipantID string  `json:"participantId"`
	Quality       string  `json:"quality"`  // QualityExcellent, QualityGood or QualityPoor
	LossPercent   float64 `json:"loss"`     // packets lost, percent
	JitterMs      float64 `json:"jitterMs"` // interarrival jitter
	RTTMs         float64 `json:"rttMs"`    // round-trip time; 0 when not yet measured
}

// ConnectionQuality carries the participants whose quality is new or
// changed level since the last message (all of them, periodically).
type ConnectionQuality struct {
	Updates []Quality `json:"updates"`
}

func init() {
	register(TypeMute, func() any { return &Mute{} })
	register(TypeTrackMuted, func() any { return &TrackMuted{} })
	register(TypeRaiseHand, func() any { return &RaiseHand{} })
	register(TypeHandRaised, func() any { return &HandRaised{} })
	register(TypeSpeakersChanged, func() any { return &SpeakersChanged{} })
	register(TypeConnectionQuality, func() any { return &ConnectionQuality{} })
}
