package datachannel_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func startServer(t *testing.T, dir string) *node.Node {
	t.Helper()
	srv, err := node.New(node.Config{
		HTTPAddr: "127.0.0.1:0", MediaUDPAddr: "127.0.0.1:0", MediaTCPAddr: "127.0.0.1:0",
		DataDir: dir, APIKeys: auth.Keys{"key": "secret"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return srv
}

// wsPeer is a minimal protocol client: WebSocket signaling plus a Pion
// publisher PeerConnection carrying the two data channels.
type wsPeer struct {
	t      *testing.T
	ws     *websocket.Conn
	pc     *webrtc.PeerConnection
	collab *webrtc.DataChannel
	in     chan []byte // collab messages
}

func joinServer(t *testing.T, srv *node.Node, identity string, grants protocol.Grants) *wsPeer {
	t.Helper()
	token, err := auth.Mint("key", "secret", auth.Claims{Identity: identity, Name: identity, Room: "r", Grants: grants}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(srv.URL(), "http", "ws", 1)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &wsPeer{t: t, ws: ws, in: make(chan []byte, 1024)}
	t.Cleanup(func() { ws.Close() })
	write := func(m any) {
		b, err := protocol.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
	}
	write(&protocol.Join{Version: protocol.Version, Token: token})

	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	p.pc = pc
	ordered := true
	if p.collab, err = pc.CreateDataChannel(protocol.ChannelCollab, &webrtc.DataChannelInit{Ordered: &ordered}); err != nil {
		t.Fatal(err)
	}
	unordered, zero := false, uint16(0)
	if _, err = pc.CreateDataChannel(protocol.ChannelCursors, &webrtc.DataChannelInit{Ordered: &unordered, MaxRetransmits: &zero}); err != nil {
		t.Fatal(err)
	}
	var re protocol.Reassembler
	p.collab.OnMessage(func(m webrtc.DataChannelMessage) {
		if whole, err := re.Add(m.Data); err == nil && whole != nil {
			p.in <- append([]byte(nil), whole...)
		}
	})
	open := make(chan struct{})
	p.collab.OnOpen(func() { close(open) })
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	write(&protocol.Offer{Target: protocol.TargetPublisher, SDP: pc.LocalDescription().SDP})
	go func() { // signaling: the publisher answer and its candidates
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			m, err := protocol.Decode(data)
			if err != nil {
				continue
			}
			switch m := m.(type) {
			case *protocol.Answer:
				if m.Target == protocol.TargetPublisher {
					_ = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP})
				}
			case *protocol.Candidate:
				if m.Target == protocol.TargetPublisher && m.Candidate != nil {
					_ = pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid, SDPMLineIndex: m.Candidate.SDPMLineIndex})
				}
			}
		}
	}()
	select {
	case <-open:
	case <-time.After(20 * time.Second):
		t.Fatal("collab channel did not open through the server")
	}
	return p
}

func (p *wsPeer) send(m any) {
	p.t.Helper()
	b, _ := json.Marshal(m)
	for _, f := range protocol.SplitFrames(b, 0, 0) {
		if err := p.collab.SendText(string(f)); err != nil {
			p.t.Fatal(err)
		}
	}
}

// await returns the next collab message of type typ, skipping others.
func (p *wsPeer) await(typ string) []byte {
	p.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m := <-p.in:
			var h struct {
				Type string `json:"type"`
			}
			json.Unmarshal(m, &h)
			if h.Type == typ {
				return m
			}
			if h.Type == protocol.DocTypeError {
				p.t.Fatalf("docError while waiting for %s: %s", typ, m)
			}
		case <-deadline:
			p.t.Fatalf("no %s", typ)
		}
	}
}

// Through a real server: the hub is wired to the publisher PeerConnection's
// data channels and to the bbolt store in the data directory; an acked op
// survives a restart; grants come from the token.
func TestThroughSignalingServer(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	editor := joinServer(t, srv, "ann", protocol.AllGrants())
	viewer := joinServer(t, srv, "bob", protocol.Grants{Subscribe: true})

	editor.send(&protocol.DocRequest{Type: protocol.DocTypeCreate, ReqID: "c", Title: "Agenda", Text: "1. "})
	var list protocol.DocList
	json.Unmarshal(editor.await(protocol.DocTypeDocs), &list)
	if list.Doc == "" {
		t.Fatalf("no doc id in %+v", list)
	}
	doc := list.Doc
	viewer.await(protocol.DocTypeDocs) // the broadcast

	editor.send(&protocol.DocRequest{Type: protocol.DocTypeOpen, ReqID: "o", Doc: doc})
	var opened protocol.DocOpened
	json.Unmarshal(editor.await(protocol.DocTypeOpened), &opened)
	if opened.Text == nil || *opened.Text != "1. " || opened.ReadOnly {
		t.Fatalf("opened: %+v", opened)
	}
	viewer.send(&protocol.DocRequest{Type: protocol.DocTypeOpen, ReqID: "o", Doc: doc})
	json.Unmarshal(viewer.await(protocol.DocTypeOpened), &opened)
	if !opened.ReadOnly {
		t.Fatal("viewer without editDocs not told readOnly")
	}

	editor.send(&protocol.DocSubmit{Type: protocol.DocTypeSubmit, Doc: doc, Rev: 0, ID: "e1", Op: json.RawMessage(`[3, "Welcome"]`)})
	var ack protocol.DocAck
	json.Unmarshal(editor.await(protocol.DocTypeAck), &ack)
	if ack.Rev != 1 || ack.ID != "e1" {
		t.Fatalf("ack: %+v", ack)
	}
	var op protocol.DocOp
	json.Unmarshal(viewer.await(protocol.DocTypeOp), &op)
	if op.Rev != 1 || op.Author != "ann" || string(op.Op) != `[3,"Welcome"]` {
		t.Fatalf("viewer got %+v (%s)", op, op.Op)
	}

	srv.Close()
	srv = startServer(t, dir)
	defer srv.Close()
	snap, err := srv.Documents().Text(context.Background(), doc)
	if err != nil || snap.Text != "1. Welcome" || snap.Rev != 1 {
		t.Fatalf("after restart: %+v %v", snap, err)
	}
}
