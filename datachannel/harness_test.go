package datachannel

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/client"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

const waitLimit = 20 * time.Second

// env is a hub over a bbolt-backed document service.
type env struct {
	t     testing.TB
	svc   *collab.Service
	store *collab.BoltStore
	hub   *Hub
	room  string
}

func newEnv(t testing.TB, cfg Config, scfg collab.Config) *env {
	t.Helper()
	store, err := collab.OpenBoltStore(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	scfg.Store = store
	if scfg.Logger == nil {
		scfg.Logger = quietLog()
	}
	svc, err := collab.NewService(scfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLog()
	}
	e := &env{t: t, svc: svc, store: store, hub: New(svc, cfg), room: "room1"}
	t.Cleanup(func() {
		e.hub.Close()
		svc.Close()
		store.Close()
	})
	return e
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (e *env) createDoc(title, text string) string {
	e.t.Helper()
	meta, err := e.svc.CreateDoc(context.Background(), collab.CreateRequest{Room: e.room, Title: title, Text: text})
	if err != nil {
		e.t.Fatal(err)
	}
	return meta.ID
}

func (e *env) text(doc string) collab.Snapshot {
	e.t.Helper()
	snap, err := e.svc.Text(context.Background(), doc)
	if err != nil {
		e.t.Fatal(err)
	}
	return snap
}

func loopbackAPI() *webrtc.API {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

// msg is one message a test client received.
type msg struct {
	Type string `json:"type"`
	raw  []byte
}

func (m msg) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(m.raw, v); err != nil {
		t.Fatalf("decode %s: %v", m.raw, err)
	}
}

// tclient is a participant: a real Pion PeerConnection pair (client and
// server side) over loopback, with the hub attached to the server side.
type tclient struct {
	t       testing.TB
	e       *env
	p       Participant
	pc, spc *webrtc.PeerConnection
	collab  *webrtc.DataChannel
	cursors *webrtc.DataChannel

	mu      sync.Mutex
	msgs    []msg // collab messages, in order
	curs    []protocol.Cursor
	notify  chan struct{}
	reasm   protocol.Reassembler
	nextID  uint64
	block   chan struct{} // while non-nil and open, the collab reader stalls
	sendMu  sync.Mutex
	docs    map[string]*client.Client
	frames  int
	reqSeq  int
	cursRaw int
}

func (e *env) join(id string, canEdit bool) *tclient {
	return e.joinWith(Participant{ID: id, Identity: "user-" + id, Name: "Name " + id, Room: e.room, CanEdit: canEdit}, nil)
}

func (e *env) joinWith(p Participant, block chan struct{}) *tclient {
	// block, when set, stalls the collab reader until stall/unstall.
	t := e.t
	t.Helper()
	api := loopbackAPI()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	spc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &tclient{t: t, e: e, p: p, pc: pc, spc: spc, notify: make(chan struct{}, 1), block: block, docs: map[string]*client.Client{}}
	t.Cleanup(func() {
		e.hub.Leave(p.ID)
		pc.Close()
		spc.Close()
	})
	spc.OnDataChannel(func(dc *webrtc.DataChannel) { e.hub.Attach(p, dc) })
	ordered := true
	if c.collab, err = pc.CreateDataChannel(protocol.ChannelCollab, &webrtc.DataChannelInit{Ordered: &ordered}); err != nil {
		t.Fatal(err)
	}
	unordered, zero := false, uint16(0)
	if c.cursors, err = pc.CreateDataChannel(protocol.ChannelCursors, &webrtc.DataChannelInit{Ordered: &unordered, MaxRetransmits: &zero}); err != nil {
		t.Fatal(err)
	}
	opened := make(chan struct{}, 2)
	c.collab.OnOpen(func() { opened <- struct{}{} })
	c.cursors.OnOpen(func() { opened <- struct{}{} })
	c.collab.OnMessage(func(m webrtc.DataChannelMessage) {
		c.mu.Lock()
		gate := c.block
		c.mu.Unlock()
		if gate != nil {
			<-gate // a stalled reader: the SCTP receive window fills up
		}
		whole, err := c.reasm.Add(m.Data)
		if err != nil {
			t.Errorf("%s: bad frame from server: %v", p.ID, err)
			return
		}
		c.mu.Lock()
		c.frames++
		c.mu.Unlock()
		if whole == nil {
			return
		}
		var mm msg
		if err := json.Unmarshal(whole, &mm); err != nil {
			t.Errorf("%s: server sent non-JSON %q", p.ID, whole)
			return
		}
		mm.raw = append([]byte(nil), whole...)
		c.mu.Lock()
		c.msgs = append(c.msgs, mm)
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
	})
	c.cursors.OnMessage(func(m webrtc.DataChannelMessage) {
		var cur protocol.Cursor
		if err := json.Unmarshal(m.Data, &cur); err != nil {
			t.Errorf("%s: bad cursor %q", p.ID, m.Data)
			return
		}
		c.mu.Lock()
		c.curs = append(c.curs, cur)
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gather := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gather
	if err := spc.SetRemoteDescription(*pc.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := spc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gather = webrtc.GatheringCompletePromise(spc)
	if err := spc.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gather
	if err := pc.SetRemoteDescription(*spc.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(waitLimit)
	for range 2 {
		select {
		case <-opened:
		case <-deadline:
			t.Fatalf("%s: data channels did not open", p.ID)
		}
	}
	// The hub attaches on the server side's OnDataChannel: wait for it.
	c.waitUntil("hub attached", func() bool {
		e.hub.mu.Lock()
		defer e.hub.mu.Unlock()
		l := e.hub.links[p.ID]
		return l != nil && l.collab != nil && l.cursorsCh != nil
	})
	return c
}

// sendRaw sends one message, chunked like a real client.
func (c *tclient) sendRaw(data []byte) {
	c.t.Helper()
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	frames := protocol.SplitFrames(data, c.nextID, 0)
	if len(frames) > 1 {
		c.nextID++
	}
	for _, f := range frames {
		for c.collab.BufferedAmount() > 1<<20 {
			time.Sleep(time.Millisecond)
		}
		if err := c.collab.SendText(string(f)); err != nil {
			c.t.Fatalf("%s: send: %v", c.p.ID, err)
		}
	}
}

func (c *tclient) send(m any) {
	c.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *tclient) sendCursor(doc string, rev int64, anchor, head int) {
	c.t.Helper()
	b, _ := json.Marshal(&protocol.Cursor{Type: protocol.DocTypeCursor, Doc: doc, Rev: rev, Anchor: anchor, Head: head})
	if err := c.cursors.SendText(string(b)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *tclient) reqID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqSeq++
	return fmt.Sprintf("%s-r%d", c.p.ID, c.reqSeq)
}

// waitUntil polls cond until it holds or the deadline passes.
func (c *tclient) waitUntil(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: timed out waiting for %s", c.p.ID, what)
		}
		select {
		case <-c.notify:
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitMsg returns the first collab message (from index from on) that
// matches.
func (c *tclient) waitMsg(what string, match func(m msg) bool) msg {
	c.t.Helper()
	var found msg
	c.waitUntil(what, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, m := range c.msgs {
			if match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func (c *tclient) messages() []msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]msg(nil), c.msgs...)
}

// request sends a request with a fresh reqId and waits for its answer of
// the given type, or a docError for it.
func (c *tclient) request(req protocol.DocRequest, answer string) msg {
	c.t.Helper()
	req.ReqID = c.reqID()
	c.send(&req)
	return c.waitMsg(req.Type+" answer", func(m msg) bool {
		if m.Type != answer && m.Type != protocol.DocTypeError {
			return false
		}
		var h struct {
			ReqID string `json:"reqId"`
		}
		json.Unmarshal(m.raw, &h)
		return h.ReqID == req.ReqID
	})
}

// docError waits for a docError matching the given fields.
func (c *tclient) docError(what string, match func(e protocol.DocError) bool) protocol.DocError {
	c.t.Helper()
	var out protocol.DocError
	c.waitMsg(what, func(m msg) bool {
		if m.Type != protocol.DocTypeError {
			return false
		}
		var e protocol.DocError
		json.Unmarshal(m.raw, &e)
		if match(e) {
			out = e
			return true
		}
		return false
	})
	return out
}

func (c *tclient) errorCount() int {
	n := 0
	for _, m := range c.messages() {
		if m.Type == protocol.DocTypeError {
			n++
		}
	}
	return n
}

// open opens doc (from rev, or a snapshot when rev is nil) and returns the
// answer.
func (c *tclient) open(doc string, rev *int64) protocol.DocOpened {
	c.t.Helper()
	m := c.request(protocol.DocRequest{Type: protocol.DocTypeOpen, Doc: doc, Rev: rev}, protocol.DocTypeOpened)
	if m.Type != protocol.DocTypeOpened {
		c.t.Fatalf("%s: open %s: %s", c.p.ID, doc, m.raw)
	}
	var o protocol.DocOpened
	m.decode(c.t, &o)
	return o
}

// editor follows one open document with the OT client state machine, fed
// from the collab messages in order.
type editor struct {
	c    *tclient
	doc  string
	cl   *client.Client
	seen int // collab messages consumed
}

func (c *tclient) edit(doc string) *editor {
	c.t.Helper()
	before := len(c.messages())
	o := c.open(doc, nil)
	if o.Text == nil {
		c.t.Fatalf("open without rev gave no snapshot")
	}
	ed := &editor{c: c, doc: doc, cl: client.New(c.p.ID+"-", o.Rev, *o.Text)}
	// Skip to just after the opened message.
	msgs := c.messages()
	for i := before; i < len(msgs); i++ {
		if msgs[i].Type == protocol.DocTypeOpened {
			ed.seen = i + 1
			break
		}
	}
	return ed
}

// pump feeds newly arrived ops and acks to the state machine, sending
// whatever it releases.
func (ed *editor) pump() {
	t := ed.c.t
	t.Helper()
	msgs := ed.c.messages()
	for ; ed.seen < len(msgs); ed.seen++ {
		m := msgs[ed.seen]
		switch m.Type {
		case protocol.DocTypeOp:
			var o protocol.DocOp
			m.decode(t, &o)
			if o.Doc != ed.doc {
				continue
			}
			op, err := ot.Parse(o.Op)
			if err != nil {
				t.Fatalf("bad op from server: %v", err)
			}
			_, next, err := ed.cl.Receive(o.Rev, o.ID, op)
			if err != nil {
				t.Fatalf("%s: receive op rev %d: %v", ed.c.p.ID, o.Rev, err)
			}
			ed.submit(next)
		case protocol.DocTypeAck:
			var a protocol.DocAck
			m.decode(t, &a)
			if a.Doc != ed.doc {
				continue
			}
			next, err := ed.cl.Ack(a.Rev, a.ID)
			if err != nil {
				t.Fatalf("%s: ack rev %d: %v", ed.c.p.ID, a.Rev, err)
			}
			ed.submit(next)
		case protocol.DocTypeError:
			var de protocol.DocError
			m.decode(t, &de)
			if de.ID != "" && de.Doc == ed.doc {
				t.Fatalf("%s: op refused: %s", ed.c.p.ID, m.raw)
			}
		}
	}
}

func (ed *editor) submit(s *client.Submission) {
	if s == nil {
		return
	}
	op, err := s.Op.MarshalJSON()
	if err != nil {
		ed.c.t.Fatal(err)
	}
	ed.c.send(&protocol.DocSubmit{Type: protocol.DocTypeSubmit, Doc: ed.doc, Rev: s.BaseRev, ID: s.ClientOpID, Op: op})
}

// local makes an edit and sends it if nothing is in flight.
func (ed *editor) local(op ot.Op) {
	ed.c.t.Helper()
	ed.pump()
	s, err := ed.cl.ApplyLocal(op)
	if err != nil {
		ed.c.t.Fatalf("local edit %v on %q: %v", op, ed.cl.Text(), err)
	}
	ed.submit(s)
}

// settle pumps until the client is synchronized at the server's revision.
func (ed *editor) settle() {
	ed.c.t.Helper()
	ed.c.waitUntil("editor settled", func() bool {
		ed.pump()
		return ed.cl.State() == client.Synchronized && ed.cl.Revision() == ed.c.e.text(ed.doc).Rev
	})
}

// settleAll pumps every editor until all are synchronized at the server's
// revision.
func settleAll(eds ...*editor) {
	c := eds[0].c
	c.t.Helper()
	c.waitUntil("editors settled", func() bool {
		ok := true
		for _, ed := range eds {
			ed.pump()
		}
		for _, ed := range eds {
			if ed.cl.State() != client.Synchronized || ed.cl.Revision() != ed.c.e.text(ed.doc).Rev {
				ok = false
			}
		}
		return ok
	})
}

// stall stops reading the collab channel until the returned func is called.
func (c *tclient) stall() (release func()) {
	gate := make(chan struct{})
	c.mu.Lock()
	c.block = gate
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.block = nil
		c.mu.Unlock()
		close(gate)
	}
}
