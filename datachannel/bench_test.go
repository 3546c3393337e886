package datachannel

import (
	"strings"
	"testing"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
)

// BenchmarkOpen1MB opens a 1 MB document over a loopback data channel:
// subscribe, encode, chunk, SCTP, reassemble, decode.
//
//	go test -run '^$' -bench Open1MB -benchtime 20x ./datachannel/
func BenchmarkOpen1MB(b *testing.B) {
	e := newEnv(b, Config{}, collab.Config{})
	text := strings.Repeat("Lorem ipsum dolor sit amet, ünïcödé ✓ consectetur.\n", 1<<20/53)
	doc := e.createDoc("big", text)
	c := e.join("A", false)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		o := c.open(doc, nil)
		if o.Text == nil || len(*o.Text) != len(text) {
			b.Fatal("wrong text")
		}
		c.mu.Lock()
		c.msgs = nil
		c.mu.Unlock()
	}
}

// BenchmarkSubmitAck measures one participant's submit-to-ack round trip
// over the channel with the bbolt store (fsync per batch).
//
//	go test -run '^$' -bench SubmitAck -benchtime 200x ./datachannel/
func BenchmarkSubmitAck(b *testing.B) {
	e := newEnv(b, Config{}, collab.Config{})
	doc := e.createDoc("d", "")
	c := e.join("A", true)
	ed := c.edit(doc)
	for b.Loop() {
		ed.local(ot.Op{}.Insert("x"))
		ed.settle()
	}
}
