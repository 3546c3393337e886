package protocol

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecode: no input makes the decoder panic, and whatever it accepts
// encodes again to a message that decodes to the same value.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"type":"join","version":1,"token":"t","sessionId":"SE_1","lastSeq":7}`,
		`{"type":"offer","target":"publisher","sdp":"v=0","sources":{"a":"camera"}}`,
		`{"type":"candidate","target":"subscriber","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"type":"candidate","target":"publisher","candidate":null}`,
		`{"type":"chat","clientId":"c1","text":"héllo 👋"}`,
		`{"type":"setPresence","state":"away","status":"lunch"}`,
		`{"type":"typing","typing":true}`,
		`{"type":"chatMessage","seq":3,"id":"CH_1","from":"PA_1","text":"x","ts":1}`,
		`{"type":"joined","participants":null,"chat":[]}`,
		`{"type":"leave"}`, `{"type":7}`, `[]`, `{"type":"join","type":"leave"}`, "{\"type\":\"chat\",\"text\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, seq, err := DecodeEvent(data)
		if err != nil {
			return
		}
		out, err := EncodeEvent(m, seq)
		if err != nil {
			t.Fatalf("decoded %q to %T but cannot encode it: %v", data, m, err)
		}
		back, seq2, err := DecodeEvent(out)
		if err != nil || seq2 != seq {
			t.Fatalf("re-decode of %q: seq %d/%d err %v", out, seq2, seq, err)
		}
		// One encode normalises (empty maps, invalid UTF-8); after it
		// the encoding is stable.
		out2, err := EncodeEvent(back, seq2)
		if err != nil || !bytes.Equal(out, out2) || reflect.TypeOf(back) != reflect.TypeOf(m) {
			t.Fatalf("round trip changed the message:\n%s\n%s", out, out2)
		}
	})
}
