package signaling

import (
	"testing"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// awaited tells the offers and chat messages the rate limit drops from
// everything else, wherever "type" stands, and takes malformed messages
// for plain drops.
func TestAwaited(t *testing.T) {
	encoded, err := protocol.Encode(&protocol.Offer{Target: protocol.TargetPublisher, SDP: "v=0\r\n", Sources: map[string]string{"a": "camera"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		msg  string
		want string
	}{
		{string(encoded), "offer"},
		{` { "type" : "offer" , "sdp":"v=0"}`, "offer"},
		{`{"target":"publisher","sources":{"type":"chat","x":[1,{"y":"}"}]},"sdp":"a\"b","n":-1.5e3,"ok":true,"type":"offer"}`, "offer"},
		{`{"type":"chat","clientId":"offer","text":"offer"}`, "chat"},
		{`{"type":"chat","clientId":"x","text":"a"`, ""},
		{`{"type":"setPresence","state":"online"}`, ""},
		{`{"type":"answer","target":"subscriber","sdp":"v=0"}`, "answer"},
		{`{"sdp":"{\"type\":\"offer\"}","type":"answer"}`, "answer"},
		{`{"sources":{"type":"offer"},"type":"answer"}`, "answer"},
		{`{"type":"offer","sdp":"v=0"`, ""}, // cut short
		{`{"type":"offer",}`, ""},
		{`{"type":"off\u0065r"}`, "offer"}, // as Decode reads it
		{`["type","offer"]`, ""},
		{`{"type":`, ""},
		{`{"type":"offer`, ""},
		{``, ""},
		{`"offer"`, ""},
		{`{"a":"\`, ""},
		{`{"a":[{]}`, ""},
	} {
		if got := awaited([]byte(c.msg)); got != c.want {
			t.Errorf("awaited(%s) = %q, want %q", c.msg, got, c.want)
		}
	}
}
