package protocol

import (
	"reflect"
	"strings"
	"testing"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	mid, idx := "0", uint16(0)
	msgs := []any{
		&Join{Version: Version, Token: "tok"},
		&Joined{Room: "r", Participant: Participant{ID: "PA_1", Identity: "a", Name: "A"},
			Participants: []Participant{{ID: "PA_2", Identity: "b", Name: "B", Tracks: []Track{{ID: "TR_1", Kind: "video", Source: "camera", Codec: "video/VP8"}}}},
			Grants:       AllGrants(), ICEServers: []ICEServer{{URLs: []string{"turn:h:3478"}, Username: "u", Credential: "c"}}},
		&Leave{},
		&Offer{Target: TargetPublisher, SDP: "v=0", Sources: map[string]string{"t": "screen"}},
		&Answer{Target: TargetSubscriber, SDP: "v=0"},
		&Candidate{Target: TargetPublisher, Candidate: &ICECandidate{Candidate: "candidate:1", SDPMid: &mid, SDPMLineIndex: &idx}},
		&Candidate{Target: TargetSubscriber},
		&ParticipantJoined{Participant: Participant{ID: "PA_3"}},
		&ParticipantLeft{ParticipantID: "PA_3"},
		&TrackPublished{ParticipantID: "PA_2", Track: Track{ID: "TR_2", Kind: "audio"}},
		&TrackUnpublished{ParticipantID: "PA_2", TrackID: "TR_2"},
		&Error{Code: CodeBadSDP, Message: "nope", Ref: TypeOffer},
	}
	for _, m := range msgs {
		data, err := Encode(m)
		if err != nil {
			t.Fatalf("encode %T: %v", m, err)
		}
		if !strings.HasPrefix(string(data), `{"type":"`+TypeOf(m)+`"`) {
			t.Errorf("%T encodes as %s: type must come first", m, data)
		}
		back, err := Decode(data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Errorf("round trip of %T:\n got %+v\nwant %+v", m, back, m)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, in := range []string{
		``, `not json`, `[]`, `{}`, `{"type":""}`, `{"type":"nope"}`, `{"type":"join","version":"one"}`, `{"type":7}`,
	} {
		if m, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) = %+v, want an error", in, m)
		}
	}
	if _, err := Encode(struct{}{}); err == nil {
		t.Error("encoding a non-message succeeded")
	}
}

func TestEventCarriesSeq(t *testing.T) {
	for _, m := range []any{&Leave{}, &ParticipantLeft{ParticipantID: "PA_1"}, &ChatMessage{ID: "c", Text: "hé"}} {
		data, err := EncodeEvent(m, 42)
		if err != nil {
			t.Fatal(err)
		}
		back, seq, err := DecodeEvent(data)
		if err != nil || seq != 42 || !reflect.DeepEqual(back, m) {
			t.Errorf("%s: seq %d err %v back %+v", data, seq, err, back)
		}
	}
}
