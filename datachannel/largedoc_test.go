package datachannel

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/client"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// bigText is about n bytes of text whose JSON encoding is much larger
// (quotes, backslashes, newlines and '<' are escaped), with multi-byte
// characters on the way, so that chunk frames must cut escapes and code
// points right.
func bigText(n int) string {
	line := `"quoted" \ back <tag> déjà vu 😀 ` + "\t\n"
	return strings.Repeat(line, n/len(line)+1)[:n-n%len(line)]
}

// A snapshot whose message is larger than the whole per-peer queue (1 MB
// of text, about 1.4 MB of JSON, with a 1 MiB queue: the default 8 MiB
// queue and 7 MB documents are sdk's TestDocsSevenMegabytes) opens while
// another participant edits the document and changes the room's document
// list: the snapshot is streamed frame by frame as the channel drains, so
// the queue never holds it, the opener is not cut off, and it ends with
// the server's text. The opener stops reading for a while on the way, so
// the stream waits on backpressure.
func TestLargeSnapshotIsStreamed(t *testing.T) {
	e := newEnv(t, Config{QueueBytes: 1 << 20, HighWater: 256 << 10, LowWater: 64 << 10}, collab.Config{})
	cfg := e.hub.cfg
	text := bigText(1 << 20)
	if enc, _ := json.Marshal(text); len(enc) <= cfg.QueueBytes {
		t.Fatalf("the snapshot's JSON (%d bytes) fits the queue (%d): the test proves nothing", len(enc), cfg.QueueBytes)
	}
	doc := e.createDoc("big", text)
	a := e.join("A", true)
	a.open(doc, nil)
	b := e.join("B", true)

	release := b.stall()
	b.send(&protocol.DocRequest{Type: protocol.DocTypeOpen, ReqID: "big", Doc: doc})
	// While B reads nothing: A edits and creates documents (each sends the
	// room's list to B, which must never be dropped).
	const edits = 40
	for i := range edits {
		op, _ := ot.Op{}.Insert(fmt.Sprintf("[a%d]", i)).MarshalJSON()
		a.send(&protocol.DocSubmit{Type: protocol.DocTypeSubmit, Doc: doc, Rev: 0, ID: fmt.Sprint("a", i), Op: op})
		if i%4 == 0 {
			a.request(protocol.DocRequest{Type: protocol.DocTypeCreate, Title: fmt.Sprint("t", i)}, protocol.DocTypeDocs)
		}
		if st := e.hub.Stats(); st.PeakQueued > int64(cfg.QueueBytes) {
			t.Fatalf("queue peaked at %d bytes, cap %d", st.PeakQueued, cfg.QueueBytes)
		}
	}
	a.waitUntil("A's edits acked", func() bool {
		n := 0
		for _, m := range a.messages() {
			if m.Type == protocol.DocTypeAck {
				n++
			}
		}
		return n == edits
	})
	release()
	final := e.text(doc)

	m := b.waitMsg("opened", func(m msg) bool { return m.Type == protocol.DocTypeOpened })
	var o protocol.DocOpened
	m.decode(t, &o)
	if o.Text == nil || len(*o.Text) < len(text) {
		t.Fatalf("opened: snapshot of %d bytes, the document had %d", len(deref(o.Text)), len(text))
	}
	last := fmt.Sprintf(`"rev":%d,`, final.Rev)
	b.waitMsg("the last op, or lagging", func(m msg) bool {
		return m.Type == protocol.DocTypeOp && strings.Contains(string(m.raw), last) || m.Type == protocol.DocTypeLagging
	})
	cl := client.New("B-", o.Rev, *o.Text)
	follow(t, b, cl, doc, m)
	if cl.Revision() != final.Rev || cl.Text() != final.Text {
		t.Fatalf("B at rev %d, server at %d", cl.Revision(), final.Rev)
	}
	st := e.hub.Stats()
	if st.PeakQueued > int64(cfg.QueueBytes)/4 {
		t.Errorf("queue peaked at %d bytes: the snapshot was queued whole", st.PeakQueued)
	}
	e.hub.mu.Lock()
	_, still := e.hub.links["B"]
	e.hub.mu.Unlock()
	if !still {
		t.Fatal("B was cut off")
	}
	t.Logf("%d frames to B, %+v", b.frames, st)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// follow feeds c's messages after opened to cl: ops, or a lagging notice
// answered by opening again from cl's revision.
func follow(t *testing.T, c *tclient, cl *client.Client, doc string, opened msg) {
	t.Helper()
	msgs := c.messages()
	start := 0
	for i, m := range msgs {
		if string(m.raw) == string(opened.raw) {
			start = i + 1
		}
	}
	receive := func(op protocol.DocOp) {
		parsed, err := ot.Parse(op.Op)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := cl.Receive(op.Rev, op.ID, parsed); err != nil {
			t.Fatalf("op %d: %v", op.Rev, err)
		}
	}
	for _, m := range msgs[start:] {
		switch m.Type {
		case protocol.DocTypeOp:
			var op protocol.DocOp
			m.decode(t, &op)
			if op.Doc == doc {
				receive(op)
			}
		case protocol.DocTypeLagging:
			rev := cl.Revision()
			for _, op := range c.open(doc, &rev).Ops {
				receive(op)
			}
			return
		}
	}
}
