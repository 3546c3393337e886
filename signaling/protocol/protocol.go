// Package protocol holds the wire types of Huddle's signaling protocol: JSON
// messages over one WebSocket per participant. Both the server and the Go SDK
// import it, so the two can never disagree on a field name. docs/PROTOCOL.md
// describes the same messages for people and for the browser client.
package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the protocol version a client states in its join. The server
// refuses versions it does not speak.
const Version = 1

// Message types. Client-to-server and server-to-client share one namespace.
const (
	TypeJoin              = "join"              // client: first message
	TypeJoined            = "joined"            // server: join accepted
	TypeLeave             = "leave"             // client: leaving on purpose
	TypeOffer             = "offer"             // both: SDP offer for one PeerConnection
	TypeAnswer            = "answer"            // both: SDP answer for one PeerConnection
	TypeCandidate         = "candidate"         // both: trickle ICE candidate
	TypeParticipantJoined = "participantJoined" // server
	TypeParticipantLeft   = "participantLeft"   // server
	TypeTrackPublished    = "trackPublished"    // server
	TypeTrackUnpublished  = "trackUnpublished"  // server
	TypeError             = "error"             // server
)

// PeerConnection targets. The client always offers on the publisher PC and
// the server always offers on the subscriber PC, so offers can never glare.
const (
	TargetPublisher  = "publisher"
	TargetSubscriber = "subscriber"
)

// Error codes carried in Error.Code.
const (
	CodeBadMessage   = "bad_message"   // not JSON, unknown type, missing field
	CodeBadVersion   = "bad_version"   // protocol version not supported
	CodeBadToken     = "bad_token"     // token missing, malformed, expired or for another room
	CodeNotJoined    = "not_joined"    // a message other than join before join
	CodeBadSDP       = "bad_sdp"       // SDP that does not parse or cannot be applied
	CodeBadCandidate = "bad_candidate" // ICE candidate that cannot be added
	CodeForbidden    = "forbidden"     // the token's grants do not allow it
	CodeInternal     = "internal"      // server fault; the connection stays usable
	CodeReplaced     = "replaced"      // the same identity joined again elsewhere; this connection ends
	CodeTooSlow      = "too_slow"      // the client did not read its messages; this connection ends
	CodeRateLimited  = "rate_limited"  // too many messages too fast; this one was dropped
	CodeLimit        = "limit"         // a per-participant bound was hit (candidates, sources, chat...); nothing was stored
	CodeRoomFull     = "room_full"     // the room has its maximum of participants; this connection ends
	CodeJoinTimeout  = "join_timeout"  // no join in time; this connection ends
	CodeRoomMoved    = "room_moved"    // cluster: the room moved to another node, or its node is gone; reconnect
	// CodeUnavailable (cluster mode): a store or node the request needs
	// cannot be reached now, or the room is moving; nothing was stored.
	// Retry in a moment (a chat message with the same clientId is stored
	// once), or reconnect.
	CodeUnavailable = "unavailable"
)

// WebSocket close codes the server uses, with a reason text in the frame.
const (
	CloseNormal         = 1000 // leave, replaced
	CloseGoingAway      = 1001
	ClosePolicy         = 1008 // a refused join (the error code is the reason), too slow, removed, room closed
	CloseServiceRestart = 1012 // the server is restarting: reconnect (resume) after a short wait
	// CloseRoomMoved (cluster mode): the room's node is gone or the room
	// moved to another node, or it cannot be reached now. Reconnect through
	// the same URL after a random wait spread over ReconnectSpread (so that
	// a dead node's participants do not all arrive at once), then with
	// backoff and jitter.
	CloseRoomMoved = 4000
	// CloseOverloaded (cluster mode): the relay between the node the
	// client reached and the room's node is overloaded (a queue on the way
	// was full, or a node is at its link limit); the room did not move.
	// Reconnect (and resume) after OverloadWait, doubled for each such
	// close that comes soon after the last, with jitter: an immediate
	// reconnect meets the same overload.
	CloseOverloaded = 4029
)

// PingInterval is how often the server pings a joined WebSocket (its
// default; signaling.Config.PingInterval). A client that hears nothing
// (no message, no ping) for several of them may take the server for dead.
const PingInterval = 5 * time.Second

// OverloadWait is the first wait before reconnecting after
// CloseOverloaded; see CloseOverloaded.
const OverloadWait = time.Second

// ReconnectSpread is the window over which clients spread their first
// reconnect after CloseRoomMoved (uniformly at random).
const ReconnectSpread = 2 * time.Second

// Grants say what a participant may do. They travel inside the access token.
type Grants struct {
	Publish     bool `json:"publish,omitempty"`
	Subscribe   bool `json:"subscribe,omitempty"`
	PublishData bool `json:"publishData,omitempty"`
	EditDocs    bool `json:"editDocs,omitempty"`
	RoomAdmin   bool `json:"roomAdmin,omitempty"`
}

// AllGrants is what an ordinary meeting participant gets.
func AllGrants() Grants {
	return Grants{Publish: true, Subscribe: true, PublishData: true, EditDocs: true}
}

// Participant is one person or bot in a room, as others see them.
type Participant struct {
	ID       string  `json:"id"`       // server-chosen, unique per join; also the MediaStream id of their tracks
	Identity string  `json:"identity"` // from the token: stable across joins
	Name     string  `json:"name"`
	Tracks   []Track `json:"tracks"` // never null
	Presence
	Hand bool `json:"handRaised,omitempty"` // hand raised (meeting.go)
}

// Track is one published media track. On the subscriber PC the track's
// MediaStream id is the publisher's participant ID and its track id is ID.
type Track struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`   // "audio" or "video"
	Source string `json:"source"` // "camera", "microphone", "screen", "screen_audio" or "unknown"
	Codec  string `json:"codec,omitempty"`
	Muted  bool   `json:"muted,omitempty"` // the publisher muted it (meeting.go)
}

// ICEServer is a STUN or TURN server the client should use.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICECandidate mirrors the browser's RTCIceCandidateInit.
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Join is the client's first message.
type Join struct {
	Version int    `json:"version"`
	Token   string `json:"token"`
	// Resume: the session id from the last joined and the seq of the last
	// room event seen. An unknown or expired session joins afresh.
	SessionID string `json:"sessionId,omitempty"`
	LastSeq   uint64 `json:"lastSeq,omitempty"`
}

// Joined answers a successful join.
type Joined struct {
	Room         string        `json:"room"`
	Participant  Participant   `json:"participant"`  // you
	Participants []Participant `json:"participants"` // everyone else, with their tracks
	Grants       Grants        `json:"grants"`
	ICEServers   []ICEServer   `json:"iceServers"`
	// SessionID resumes this session after a drop (Join.SessionID).
	SessionID string `json:"sessionId"`
	// Seq is the room event sequence at this moment: the room events that
	// follow carry seq > Seq.
	Seq uint64 `json:"seq"`
	// Resumed: this is the same participant as before the drop (same id,
	// tracks and documents). Replayed is true when the missed events
	// follow; false after a resume means Participants and Chat are a fresh
	// snapshot.
	Resumed  bool          `json:"resumed,omitempty"`
	Replayed bool          `json:"replayed,omitempty"`
	Chat     []ChatMessage `json:"chat"` // recent history, oldest first; never null
}

// Leave ends the session on purpose.
type Leave struct{}

// SDP carries an offer or an answer for one of the two PeerConnections.
type SDP struct {
	Target string `json:"target"` // TargetPublisher or TargetSubscriber
	SDP    string `json:"sdp"`
	// Sources maps the client's local track ids (the msid track id in the
	// SDP) to a source such as "camera" or "screen". Publisher offers only.
	Sources map[string]string `json:"sources,omitempty"`
}

// Candidate carries one trickled ICE candidate for one PeerConnection. A nil
// Candidate means end of candidates.
type Candidate struct {
	Target    string        `json:"target"`
	Candidate *ICECandidate `json:"candidate"`
}

// ParticipantJoined tells the room about a newcomer.
type ParticipantJoined struct {
	Participant Participant `json:"participant"`
}

// ParticipantLeft tells the room someone left or timed out.
type ParticipantLeft struct {
	ParticipantID string `json:"participantId"`
}

// TrackPublished tells subscribers that a track is on its way; the matching
// track arrives on the subscriber PC in the server's next offer.
type TrackPublished struct {
	ParticipantID string `json:"participantId"`
	Track         Track  `json:"track"`
}

// TrackUnpublished tells subscribers a track has ended.
type TrackUnpublished struct {
	ParticipantID string `json:"participantId"`
	TrackID       string `json:"trackId"`
}

// Error reports a refused message. A refused join, and too_slow,
// replaced, removed, room_closed and room_moved, end the connection (a
// close frame follows); after any other error the connection stays open.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"` // the type of the message it answers, when known
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// TypeOf returns the wire type of a message value, or "" if it is not one.
func TypeOf(m any) string {
	t, _ := typeOf(m)
	return t
}

// typeOf maps each Go message type to its wire type.
func typeOf(m any) (string, error) {
	switch m := m.(type) {
	case *Join:
		return TypeJoin, nil
	case *Joined:
		return TypeJoined, nil
	case *Leave:
		return TypeLeave, nil
	case *Offer:
		return TypeOffer, nil
	case *Answer:
		return TypeAnswer, nil
	case *Candidate:
		return TypeCandidate, nil
	case *ParticipantJoined:
		return TypeParticipantJoined, nil
	case *ParticipantLeft:
		return TypeParticipantLeft, nil
	case *TrackPublished:
		return TypeTrackPublished, nil
	case *TrackUnpublished:
		return TypeTrackUnpublished, nil
	case *Error:
		return TypeError, nil
	default:
		if t, ok := registeredTypeOf(m); ok {
			return t, nil
		}
		return "", fmt.Errorf("protocol: no wire type for %T", m)
	}
}

// Offer and Answer are SDP messages with their own wire types.
type (
	Offer  SDP
	Answer SDP
)

// newOf returns a fresh value for a wire type.
func newOf(t string) (any, bool) {
	switch t {
	case TypeJoin:
		return &Join{}, true
	case TypeJoined:
		return &Joined{}, true
	case TypeLeave:
		return &Leave{}, true
	case TypeOffer:
		return &Offer{}, true
	case TypeAnswer:
		return &Answer{}, true
	case TypeCandidate:
		return &Candidate{}, true
	case TypeParticipantJoined:
		return &ParticipantJoined{}, true
	case TypeParticipantLeft:
		return &ParticipantLeft{}, true
	case TypeTrackPublished:
		return &TrackPublished{}, true
	case TypeTrackUnpublished:
		return &TrackUnpublished{}, true
	case TypeError:
		return &Error{}, true
	}
	return registeredNew(t)
}

// Encode renders a message as one JSON object with its "type" field first.
func Encode(m any) ([]byte, error) {
	t, err := typeOf(m)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	out := make([]byte, 0, len(body)+len(t)+12)
	out = append(out, `{"type":"`...)
	out = append(out, t...)
	out = append(out, '"')
	if len(body) > 2 { // body is "{...}"; "{}" has no fields to add
		out = append(out, ',')
		out = append(out, body[1:]...)
	} else {
		out = append(out, '}')
	}
	return out, nil
}

// Decode parses one message. The returned value is a pointer to one of this
// package's message types. Errors say what was wrong, for the client to read.
func Decode(data []byte) (any, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("message is not a JSON object: %w", err)
	}
	if head.Type == "" {
		return nil, errors.New(`message has no "type"`)
	}
	m, ok := newOf(head.Type)
	if !ok {
		return nil, fmt.Errorf("unknown message type %q", head.Type)
	}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", head.Type, err)
	}
	return m, nil
}
