package protocol

import (
	"reflect"
	"testing"
)

func TestMeetingMessagesRoundTrip(t *testing.T) {
	msgs := []any{
		&Mute{TrackID: "TR_1", Muted: true},
		&TrackMuted{ParticipantID: "PA_1", TrackID: "TR_1", Muted: true},
		&RaiseHand{Raised: true},
		&HandRaised{ParticipantID: "PA_1", Raised: true},
		&SpeakersChanged{Speakers: []Speaker{{ParticipantID: "PA_1", Level: 0.5}}},
		&SpeakersChanged{Speakers: []Speaker{}},
		&ConnectionQuality{Updates: []Quality{{ParticipantID: "PA_1", Quality: QualityPoor, LossPercent: 9.5, JitterMs: 12, RTTMs: 40}}},
		&Joined{Participant: Participant{ID: "PA_1", Hand: true, Tracks: []Track{{ID: "TR_1", Kind: "audio", Muted: true}}}},
	}
	for _, m := range msgs {
		data, err := Encode(m)
		if err != nil {
			t.Fatalf("encode %T: %v", m, err)
		}
		back, err := Decode(data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", data, back, m)
		}
	}
	if _, err := Decode([]byte(`{"type":"mute","muted":"yes"}`)); err == nil {
		t.Error("a mute with a string for muted decoded")
	}
}
