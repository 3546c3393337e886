package signaling

import (
	"bytes"
	"testing"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// isOffer tells the offers the rate limit drops from everything else,
// wherever "type" stands, and takes malformed messages for plain drops.
func TestIsOffer(t *testing.T) {
	encoded, err := protocol.Encode(&protocol.Offer{Target: protocol.TargetPublisher, SDP: "v=0\r\n", Sources: map[string]string{"a": "camera"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{string(encoded), true},
		{` { "type" : "offer" , "sdp":"v=0"}`, true},
		{`{"target":"publisher","sources":{"type":"chat","x":[1,{"y":"}"}]},"sdp":"a\"b","n":-1.5e3,"ok":true,"type":"offer"}`, true},
		{`{"type":"chat","clientId":"offer","text":"offer"}`, false},
		{`{"sdp":"{\"type\":\"offer\"}","type":"answer"}`, false},
		{`{"sources":{"type":"offer"},"type":"answer"}`, false},
		{`{"type":"offer","sdp":"v=0"`, false}, // cut short
		{`{"type":"offer",}`, false},
		{`{"type":"off\u0065r"}`, false}, // escaped: a plain drop
		{`["type","offer"]`, false},
		{`{"type":`, false},
		{`{"type":"offer`, false},
		{``, false},
		{`"offer"`, false},
		{`{"a":"\`, false},
		{`{"a":[{]}`, false},
	} {
		if got := isOffer([]byte(c.msg)); got != c.want {
			t.Errorf("isOffer(%s) = %v, want %v", c.msg, got, c.want)
		}
	}
}

// The peek runs for every dropped message: it allocates nothing.
func TestPeekTypeAllocatesNothing(t *testing.T) {
	msgs := [][]byte{
		[]byte(`{"type":"setPresence","state":"online","status":"x"}`),
		[]byte(`{"state":"online","status":"x","type":"setPresence"}`),
		[]byte(`{"type":"offer","target":"publisher","sdp":"v=0"}`),
		[]byte(`not json at all`),
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, m := range msgs {
			_ = isOffer(m)
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
