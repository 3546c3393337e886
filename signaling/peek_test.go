package signaling

import (
	"bytes"
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
		{`{"sdp":"{\"type\":\"offer\"}","type":"answer"}`, ""},
		{`{"sources":{"type":"offer"},"type":"answer"}`, ""},
		{`{"type":"offer","sdp":"v=0"`, ""}, // cut short
		{`{"type":"offer",}`, ""},
		{`{"type":"off\u0065r"}`, ""}, // escaped: a plain drop
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

// The peek runs for every dropped message: it allocates nothing, and a
// drop that is not an offer or a chat message costs no more. (Those two
// are then checked by json.Valid, whose scanner is pooled: amortized
// nothing, though not under the race detector, which empties pools.)
func TestPeekTypeAllocatesNothing(t *testing.T) {
	plain := [][]byte{
		[]byte(`{"type":"setPresence","state":"online","status":"x"}`),
		[]byte(`{"state":"online","status":"x","type":"setPresence"}`),
		[]byte(`not json at all`),
	}
	peeked := [][]byte{
		[]byte(`{"type":"offer","target":"publisher","sdp":"v=0"}`),
		[]byte(`{"type":"chat","clientId":"c1","text":"hello"}`),
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, m := range plain {
			_ = awaited(m)
		}
		for _, m := range peeked {
			_ = peekType(m)
		}
	}); n != 0 {
		t.Errorf("%v allocations per run", n)
	}
}

// The peek never panics on any input, and where Decode takes a message
// whose "type" comes first, unescaped (as Huddle's clients send it), the
// two agree.
func FuzzPeekType(f *testing.F) {
	f.Add([]byte(`{"type":"offer","sdp":"v=0"}`))
	f.Add([]byte(`{"a":{"b":["c",{"d":"\""}]},"type":"chat"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := peekType(data)
		m, err := protocol.Decode(data)
		if err != nil || !bytes.HasPrefix(data, []byte(`{"type":"`)) || bytes.IndexByte(data[:bytes.IndexByte(data[9:], '"')+9], '\\') >= 0 {
			return
		}
		if want := protocol.TypeOf(m); string(got) != want {
			t.Errorf("peek %q, decode %q: %s", got, want, data)
		}
	})
}
