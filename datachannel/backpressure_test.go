package datachannel

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/client"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// A participant that stops reading (its PeerConnection's SCTP receive
// window fills up) does not make the server queue grow past its cap: its
// document stream is dropped with lagging, the writer is not slowed, and
// after reading again the client catches up by reopening from its rev.
func TestSlowReaderIsBoundedAndLags(t *testing.T) {
	const queueCap = 256 << 10
	e := newEnv(t, Config{QueueBytes: queueCap, HighWater: 64 << 10, LowWater: 16 << 10}, collab.Config{})
	doc := e.createDoc("d", "")
	slow := e.join("S", false)
	o := slow.open(doc, nil)
	cl := client.New("S-", o.Rev, *o.Text)
	seen := len(slow.messages())
	release := slow.stall()
	defer func() {
		if release != nil {
			release()
		}
	}()

	// A writer keeps editing: 8 KB per op, far more than the SCTP window,
	// the channel's high-water mark and the queue together.
	ctx := context.Background()
	chunk := strings.Repeat("0123456789abcdef", 512)
	rev := o.Rev
	for i := 0; e.hub.Stats().Lagging == 0; i++ {
		if i > 5000 {
			t.Fatalf("no lagging after %d ops (%+v)", i, e.hub.Stats())
		}
		ack, err := e.svc.Submit(ctx, collab.SubmitRequest{DocID: doc, Author: "writer", ClientOpID: fmt.Sprint("w", i), BaseRev: rev, Op: ot.Op{}.Insert(chunk)})
		if err != nil {
			t.Fatal(err)
		}
		rev = ack.Rev
		if q := e.hub.Stats().QueuedBytes; q > queueCap {
			t.Fatalf("queued %d bytes for a stalled peer, cap %d", q, queueCap)
		}
	}
	// More edits after the drop queue nothing for the stalled peer.
	for i := range 50 {
		ack, err := e.svc.Submit(ctx, collab.SubmitRequest{DocID: doc, Author: "writer", ClientOpID: fmt.Sprint("more", i), BaseRev: rev, Op: ot.Op{}.Insert("x")})
		if err != nil {
			t.Fatal(err)
		}
		rev = ack.Rev
	}
	st := e.hub.Stats()
	if st.PeakQueued > queueCap || st.QueuedBytes > queueCap {
		t.Fatalf("queue went past its cap %d: %+v", queueCap, st)
	}
	t.Logf("stalled peer: %+v", st)

	// Read again: the ops sent before the drop, then lagging.
	release()
	release = nil
	slow.waitMsg("lagging", func(m msg) bool { return m.Type == protocol.DocTypeLagging })
	msgs := slow.messages()
	for _, m := range msgs[seen:] {
		if m.Type == protocol.DocTypeLagging {
			break
		}
		if m.Type == protocol.DocTypePresence || m.Type == protocol.DocTypeComments {
			continue
		}
		if m.Type != protocol.DocTypeOp {
			t.Fatalf("unexpected %s before lagging", m.raw)
		}
		var op protocol.DocOp
		m.decode(t, &op)
		parsed, _ := ot.Parse(op.Op)
		if _, _, err := cl.Receive(op.Rev, op.ID, parsed); err != nil {
			t.Fatalf("op before lagging: %v", err)
		}
	}
	last := cl.Revision()
	if last >= rev {
		t.Fatalf("client saw everything (rev %d) despite lagging", last)
	}
	// Reopen from the last revision seen: catch-up (or a snapshot) to the head.
	o = slow.open(doc, &last)
	switch {
	case o.Text != nil:
		cl = client.New("S-", o.Rev, *o.Text)
	default:
		for _, op := range o.Ops {
			parsed, _ := ot.Parse(op.Op)
			if _, _, err := cl.Receive(op.Rev, op.ID, parsed); err != nil {
				t.Fatalf("catch-up op %d: %v", op.Rev, err)
			}
		}
	}
	if want := e.text(doc); cl.Text() != want.Text || cl.Revision() != want.Rev {
		t.Fatalf("after reopen: rev %d (%d code points), server rev %d (%d)", cl.Revision(), cl.Len(), want.Rev, len([]rune(want.Text)))
	}
	// The queue drains once the peer reads.
	slow.waitUntil("queue drained", func() bool { return e.hub.Stats().QueuedBytes == 0 })
}

// fakeChannel is a Channel whose buffered amount the test controls.
type fakeChannel struct {
	label string

	mu       sync.Mutex
	sent     []string
	buffered uint64
	closed   bool
	onMsg    func(webrtc.DataChannelMessage)
	onClose  func()
	onLow    func()
}

func (f *fakeChannel) Label() string                       { return f.label }
func (f *fakeChannel) ReadyState() webrtc.DataChannelState { return webrtc.DataChannelStateOpen }
func (f *fakeChannel) OnOpen(func())                       {}
func (f *fakeChannel) OnClose(fn func())                   { f.mu.Lock(); f.onClose = fn; f.mu.Unlock() }
func (f *fakeChannel) OnMessage(fn func(webrtc.DataChannelMessage)) {
	f.mu.Lock()
	f.onMsg = fn
	f.mu.Unlock()
}
func (f *fakeChannel) SendText(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, s)
	f.buffered += uint64(len(s))
	return nil
}
func (f *fakeChannel) BufferedAmount() uint64               { f.mu.Lock(); defer f.mu.Unlock(); return f.buffered }
func (f *fakeChannel) SetBufferedAmountLowThreshold(uint64) {}
func (f *fakeChannel) OnBufferedAmountLow(fn func())        { f.mu.Lock(); f.onLow = fn; f.mu.Unlock() }
func (f *fakeChannel) Close() error {
	f.mu.Lock()
	f.closed = true
	fn := f.onClose
	f.mu.Unlock()
	if fn != nil {
		fn()
	}
	return nil
}
func (f *fakeChannel) isClosed() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.closed }
func (f *fakeChannel) deliver(s string) {
	f.mu.Lock()
	fn := f.onMsg
	f.mu.Unlock()
	fn(webrtc.DataChannelMessage{IsString: true, Data: []byte(s)})
}

// Answers are never dropped one by one: a peer that sends requests but
// never reads the answers is cut off (its channels closed) once they fill
// its queue, and the queue never passes the cap meanwhile.
func TestUnreadAnswersCloseThePeer(t *testing.T) {
	const queueCap = 64 << 10
	e := newEnv(t, Config{QueueBytes: queueCap, HighWater: 16 << 10}, collab.Config{})
	e.createDoc("one", "x")
	fc := &fakeChannel{label: protocol.ChannelCollab}
	e.hub.attach(Participant{ID: "F", Identity: "f", Room: e.room}, fc)
	deadline := time.Now().Add(waitLimit)
	for i := 0; !fc.isClosed(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("peer not cut off after %d unread requests (%+v)", i, e.hub.Stats())
		}
		fc.deliver(fmt.Sprintf(`{"type":"docList","reqId":"%d"}`, i))
		if st := e.hub.Stats(); st.PeakQueued > queueCap {
			t.Fatalf("queue past its cap: %+v", st)
		}
	}
	fc.mu.Lock()
	sent := len(fc.sent)
	fc.mu.Unlock()
	if sent == 0 {
		t.Fatal("nothing was sent before the buffer filled")
	}
	// The hub forgot the peer and released its queue.
	waitFor(t, "peer gone", func() bool { st := e.hub.Stats(); return st.Participants == 0 && st.QueuedBytes == 0 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
