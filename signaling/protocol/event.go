package protocol

import (
	"encoding/json"
	"strconv"
)

// Room events (participantJoined, participantLeft, trackPublished,
// trackUnpublished, presence, chatMessage, trackMuted, handRaised) carry
// "seq": a number per room that grows by one per event. A client
// remembers the last it saw and presents it when it resumes; the server
// replays the events after it.

// EncodeEvent renders a room event with its seq right after its type.
func EncodeEvent(m any, seq uint64) ([]byte, error) {
	data, err := Encode(m)
	if err != nil {
		return nil, err
	}
	t, _ := typeOf(m)
	head := len(`{"type":"`) + len(t) + 1 // up to and including the closing quote
	out := make([]byte, 0, len(data)+28)
	out = append(out, data[:head]...)
	out = append(out, `,"seq":`...)
	out = strconv.AppendUint(out, seq, 10)
	out = append(out, data[head:]...)
	return out, nil
}

// DecodeEvent is Decode that also returns the message's seq (0 for
// messages that are not room events).
func DecodeEvent(data []byte) (any, uint64, error) {
	m, err := Decode(data)
	if err != nil {
		return nil, 0, err
	}
	var head struct {
		Seq uint64 `json:"seq"`
	}
	_ = json.Unmarshal(data, &head) // Decode has checked it is an object
	return m, head.Seq, nil
}
