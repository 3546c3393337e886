package web_test

// A stand-in for the server's document transport, for the page's document
// tests while the real one (package datachannel, wired into signaling) is
// being written: the page joins a real Huddle server for the meeting, but a
// script injected before the page loads hands it fake `collab` and `cursors`
// channels that talk over a WebSocket to this stand-in, which serves the
// protocol of docs/PROTOCOL.md with the real collab.Service, framing
// included. Everything is same-origin (the stand-in proxies the page, /ws
// and /api to the real server), so the page's CSP holds.
//
// The same test bodies run against the real server in docs_test.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/signaling/protocol"
	"github.com/huddle-rtc/huddle/web"
)

// fakeChannelsJS replaces the publisher's collab and cursors data channels
// with objects that look like RTCDataChannels (readyState, bufferedAmount,
// open/close/message/bufferedamountlow events) over a WebSocket. The real
// channels are still created, so the PeerConnection negotiates as usual.
const fakeChannelsJS = `(() => {
  const real = RTCPeerConnection.prototype.createDataChannel;
  const claims = () => {
    const tok = new URLSearchParams(location.search).get('token');
    if (!tok) return {};
    try { return JSON.parse(atob(tok.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))); } catch { return {}; }
  };
  class FakeChannel extends EventTarget {
    constructor(label) {
      super();
      this.label = label;
      this.readyState = 'connecting';
      this.bufferedAmountLowThreshold = 0;
      this.ws = null;
      const start = () => {
        const pid = window.huddle && window.huddle.participantId;
        if (!pid) { setTimeout(start, 20); return; }
        const c = claims();
        const q = new URLSearchParams({ label, pid, name: c.name || document.getElementById('name').value,
          identity: c.sub || document.getElementById('name').value,
          edit: c.grants ? String(!!c.grants.editDocs) : 'true' });
        this.ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/docws?' + q);
        this.ws.onopen = () => { this.readyState = 'open'; this.dispatchEvent(new Event('open')); };
        this.ws.onclose = () => { if (this.readyState === 'closed') return; this.readyState = 'closed'; this.dispatchEvent(new Event('close')); };
        this.ws.onmessage = (ev) => { const e = new MessageEvent('message', { data: ev.data }); this.dispatchEvent(e); };
      };
      start();
    }
    get bufferedAmount() { return this.ws ? this.ws.bufferedAmount : 0; }
    send(s) {
      if (this.readyState !== 'open') throw new DOMException('not open', 'InvalidStateError');
      this.ws.send(s);
      if (!this.polling) {
        this.polling = setInterval(() => {
          if (this.bufferedAmount <= this.bufferedAmountLowThreshold) {
            clearInterval(this.polling);
            this.polling = 0;
            this.dispatchEvent(new Event('bufferedamountlow'));
          }
        }, 5);
      }
    }
    close() { if (this.ws) this.ws.close(); }
  }
  RTCPeerConnection.prototype.createDataChannel = function (label, opts) {
    const ch = real.call(this, label, opts);
    if (label !== 'collab' && label !== 'cursors') return ch;
    return new FakeChannel(label);
  };
})();`

// standin is the stand-in document transport of one test.
type standin struct {
	t    *testing.T
	svc  *collab.Service
	room string
	URL  string // the page, proxied, with /docws

	mu    sync.Mutex
	peers map[string]*standinPeer // participant id ->
	lose  map[string]string       // identity -> "submit" or "ack": lose those, as a cut connection would
}

// loseNext makes the stand-in drop what identity submits ("submit"), or the
// acks of what it submits ("ack"), until set to "".
func (s *standin) loseNext(identity, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose[identity] = what
}

func (s *standin) losing(identity, what string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lose[identity] == what
}

type standinPeer struct {
	s                   *standin
	pid, identity, name string
	color               string
	canEdit             bool
	collab, cursors     *websocket.Conn
	wmu                 sync.Mutex
	frameID             uint64
	subs                map[string]*collab.Subscription
	ctx                 context.Context
	cancel              context.CancelFunc
}

// startStandin serves the page of the real server at serverURL, plus the
// stand-in's /docws, for documents of room.
func startStandin(t *testing.T, serverURL, room string) *standin {
	svc, err := collab.NewService(collab.Config{Store: collab.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	s := &standin{t: t, svc: svc, room: room, peers: map[string]*standinPeer{}, lose: map[string]string{}}
	target, _ := url.Parse(serverURL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	mux := http.NewServeMux()
	mux.Handle("/ws", proxy)
	mux.Handle("/api/", proxy)
	mux.Handle("/docws", http.HandlerFunc(s.serveWS))
	mux.Handle("/", web.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// injectFakeChannels makes b's pages use the stand-in's channels.
func injectFakeChannels(t *testing.T, b *browser) {
	if err := b.do(10*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: fakeChannelsJS})
		return err
	})); err != nil {
		t.Fatal(err)
	}
}

var upgrader = websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}

func (s *standin) serveWS(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	pid := q.Get("pid")
	s.mu.Lock()
	p := s.peers[pid]
	if p == nil {
		ctx, cancel := context.WithCancel(context.Background())
		h := fnv.New32a()
		h.Write([]byte(pid))
		p = &standinPeer{s: s, pid: pid, identity: q.Get("identity"), name: q.Get("name"), canEdit: q.Get("edit") == "true",
			color: fmt.Sprintf("hsl(%d, 75%%, 55%%)", h.Sum32()%360), subs: map[string]*collab.Subscription{}, ctx: ctx, cancel: cancel}
		s.peers[pid] = p
	}
	if q.Get("label") == "collab" {
		p.collab = ws
	} else {
		p.cursors = ws
	}
	s.mu.Unlock()
	var re protocol.Reassembler
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			break
		}
		msg, err := re.Add(data)
		if err != nil {
			s.t.Logf("stand-in: %s: %v", pid, err)
			continue
		}
		if msg != nil {
			p.handle(msg)
		}
	}
	if q.Get("label") == "collab" {
		p.cancel()
		s.mu.Lock()
		delete(s.peers, pid)
		var docs []string
		for doc, sub := range p.subs {
			sub.Close()
			docs = append(docs, doc)
		}
		s.mu.Unlock()
		for _, doc := range docs {
			s.presence(doc)
		}
	}
}

func (p *standinPeer) emit(ws *websocket.Conn, m any) {
	if ws == nil {
		return
	}
	data, _ := json.Marshal(m)
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.frameID++
	for _, f := range protocol.SplitFrames(data, p.frameID, 0) {
		if err := ws.WriteMessage(websocket.TextMessage, f); err != nil {
			return
		}
	}
}

func errCode(err error) string {
	switch {
	case errors.Is(err, collab.ErrUnknownDoc):
		return protocol.DocErrUnknownDoc
	case errors.Is(err, collab.ErrInvalidOp), errors.Is(err, collab.ErrFutureRevision):
		return protocol.DocErrInvalidOp
	case errors.Is(err, collab.ErrRevisionTooOld):
		return protocol.DocErrTooOld
	case errors.Is(err, collab.ErrReadOnly):
		return protocol.DocErrReadOnly
	case errors.Is(err, collab.ErrNothingToUndo), errors.Is(err, collab.ErrNothingToRedo), errors.Is(err, collab.ErrVersionExists):
		return protocol.DocErrConflict
	}
	return protocol.DocErrInternal
}

// docList is the room's list with who has each open.
func (s *standin) docList(reqID, doc string) any {
	metas, _ := s.svc.ListDocs(context.Background(), s.room)
	l := protocol.DocList{Type: protocol.DocTypeDocs, ReqID: reqID, Doc: doc, Docs: []protocol.DocInfo{}}
	for _, m := range metas {
		l.Docs = append(l.Docs, protocol.DocInfo{ID: m.ID, Title: m.Title, ReadOnly: m.ReadOnly, Created: m.Created.Format(time.RFC3339), Editors: s.editors(m.ID)})
	}
	return l
}

func (s *standin) editors(doc string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.peers {
		if _, ok := p.subs[doc]; ok {
			out = append(out, p.pid)
		}
	}
	return out
}

func (s *standin) each(fn func(p *standinPeer)) {
	s.mu.Lock()
	peers := make([]*standinPeer, 0, len(s.peers))
	for _, p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		fn(p)
	}
}

func (s *standin) broadcastList(doc string) {
	l := s.docList("", doc)
	s.each(func(p *standinPeer) { p.emit(p.collab, l) })
}

func (s *standin) presence(doc string) {
	m := protocol.DocPresence{Type: protocol.DocTypePresence, Doc: doc, Participants: s.editors(doc)}
	s.each(func(p *standinPeer) { p.emit(p.collab, m) })
}

func (p *standinPeer) handle(data []byte) {
	var env struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &env)
	s := p.s
	ctx := p.ctx
	switch env.Type {
	case protocol.DocTypeCursor:
		var c protocol.Cursor
		_ = json.Unmarshal(data, &c)
		sel := ot.Selection{Anchor: c.Anchor, Head: c.Head}
		recs, err := s.svc.OpsSince(ctx, c.Doc, c.Rev)
		if err != nil {
			return
		}
		for _, r := range recs {
			sel = ot.TransformSelection(sel, r.Op, false)
			c.Rev = r.Rev
		}
		c.Anchor, c.Head = sel.Anchor, sel.Head
		c.Participant, c.Name, c.Color = p.pid, p.name, p.color
		s.each(func(o *standinPeer) {
			s.mu.Lock()
			_, ok := o.subs[c.Doc]
			s.mu.Unlock()
			if o != p && ok {
				o.emit(o.cursors, c)
			}
		})
	case protocol.DocTypeSubmit:
		var m protocol.DocSubmit
		_ = json.Unmarshal(data, &m)
		fail := func(code, msg string) {
			p.emit(p.collab, &protocol.DocError{Type: protocol.DocTypeError, Doc: m.Doc, ID: m.ID, Code: code, Message: msg})
		}
		if s.losing(p.identity, "submit") {
			return
		}
		if !p.canEdit {
			fail(protocol.DocErrReadOnly, "you may read this document but not edit it")
			return
		}
		op, err := ot.Parse(m.Op)
		if err != nil {
			fail(protocol.DocErrInvalidOp, err.Error())
			return
		}
		ack, err := s.svc.Submit(ctx, collab.SubmitRequest{DocID: m.Doc, Author: p.identity, ClientOpID: m.ID, BaseRev: m.Rev, Op: op})
		if err != nil {
			fail(errCode(err), err.Error())
		} else if ack.Duplicate && !s.losing(p.identity, "ack") {
			p.emit(p.collab, &protocol.DocAck{Type: protocol.DocTypeAck, Doc: m.Doc, Rev: ack.Rev, ID: m.ID})
		}
	default:
		var m protocol.DocRequest
		_ = json.Unmarshal(data, &m)
		p.request(ctx, &m)
	}
}

func (p *standinPeer) request(ctx context.Context, m *protocol.DocRequest) {
	s := p.s
	fail := func(err error) {
		p.emit(p.collab, &protocol.DocError{Type: protocol.DocTypeError, ReqID: m.ReqID, Doc: m.Doc, Code: errCode(err), Message: err.Error()})
	}
	done := func() { p.emit(p.collab, &protocol.DocDone{Type: protocol.DocTypeDone, ReqID: m.ReqID, Doc: m.Doc}) }
	edits := map[string]bool{protocol.DocTypeCreate: true, protocol.DocTypeRename: true, protocol.DocTypeDelete: true,
		protocol.DocTypeUndo: true, protocol.DocTypeRedo: true, protocol.DocTypeName: true, protocol.DocTypeRestore: true}
	if edits[m.Type] && !p.canEdit {
		p.emit(p.collab, &protocol.DocError{Type: protocol.DocTypeError, ReqID: m.ReqID, Doc: m.Doc, Code: protocol.DocErrForbidden, Message: "you may not edit documents"})
		return
	}
	switch m.Type {
	case protocol.DocTypeList:
		p.emit(p.collab, s.docList(m.ReqID, ""))
	case protocol.DocTypeCreate:
		meta, err := s.svc.CreateDoc(ctx, collab.CreateRequest{Room: s.room, Title: m.Title, Text: m.Text})
		if err != nil {
			fail(err)
			return
		}
		p.emit(p.collab, s.docList(m.ReqID, meta.ID))
		s.each(func(o *standinPeer) {
			if o != p {
				o.emit(o.collab, s.docList("", meta.ID))
			}
		})
	case protocol.DocTypeRename:
		if err := s.svc.RenameDoc(ctx, m.Doc, m.Title); err != nil {
			fail(err)
			return
		}
		p.emit(p.collab, s.docList(m.ReqID, m.Doc))
		s.broadcastList(m.Doc)
	case protocol.DocTypeDelete:
		if err := s.svc.DeleteDoc(ctx, m.Doc); err != nil {
			fail(err)
			return
		}
		p.emit(p.collab, s.docList(m.ReqID, m.Doc))
		s.broadcastList(m.Doc)
	case protocol.DocTypeOpen:
		sub, err := s.svc.Subscribe(ctx, m.Doc)
		if err != nil {
			fail(err)
			return
		}
		o := protocol.DocOpened{Type: protocol.DocTypeOpened, ReqID: m.ReqID, Doc: m.Doc, Rev: sub.Rev, ReadOnly: !p.canEdit}
		if m.Rev == nil || *m.Rev < 0 {
			o.Text = &sub.Text
		} else {
			recs, err := s.svc.OpsSince(ctx, m.Doc, *m.Rev)
			if err != nil {
				o.Text = &sub.Text
			}
			for _, r := range recs {
				if r.Rev <= sub.Rev {
					o.Ops = append(o.Ops, protocol.DocOp{Rev: r.Rev, Op: opRaw(r.Op), Author: r.Author, ID: r.ClientOpID})
				}
			}
			if o.Ops == nil && o.Text == nil {
				o.Ops = []protocol.DocOp{}
			}
		}
		s.mu.Lock()
		if old := p.subs[m.Doc]; old != nil {
			old.Close()
		}
		p.subs[m.Doc] = sub
		s.mu.Unlock()
		p.emit(p.collab, &o)
		s.presence(m.Doc)
		go func() {
			for r := range sub.C {
				if r.Author == p.identity && r.ClientOpID != "" {
					if s.losing(p.identity, "ack") {
						continue
					}
					p.emit(p.collab, &protocol.DocAck{Type: protocol.DocTypeAck, Doc: m.Doc, Rev: r.Rev, ID: r.ClientOpID})
				} else {
					p.emit(p.collab, &protocol.DocOp{Type: protocol.DocTypeOp, Doc: m.Doc, Rev: r.Rev, Op: opRaw(r.Op), Author: r.Author, ID: r.ClientOpID})
				}
			}
		}()
	case protocol.DocTypeClose:
		s.mu.Lock()
		if sub := p.subs[m.Doc]; sub != nil {
			sub.Close()
			delete(p.subs, m.Doc)
		}
		s.mu.Unlock()
		done()
		s.presence(m.Doc)
	case protocol.DocTypeUndo, protocol.DocTypeRedo:
		f := s.svc.Undo
		if m.Type == protocol.DocTypeRedo {
			f = s.svc.Redo
		}
		if _, err := f(ctx, m.Doc, p.identity); err != nil {
			fail(err)
			return
		}
		done()
	case protocol.DocTypeName:
		rev := int64(-1)
		if m.Rev != nil {
			rev = *m.Rev
		}
		if _, err := s.svc.NameVersion(ctx, m.Doc, m.Name, p.identity, rev); err != nil {
			fail(err)
			return
		}
		done()
	case protocol.DocTypeHistory:
		vs, err := s.svc.Versions(ctx, m.Doc)
		if err != nil {
			fail(err)
			return
		}
		snaps, _ := s.svc.Snapshots(ctx, m.Doc)
		h := protocol.DocHistory{Type: protocol.DocTypeHistoryR, ReqID: m.ReqID, Doc: m.Doc, Versions: []protocol.DocVersion{}, Snapshots: []protocol.DocVersion{}}
		for _, v := range vs {
			h.Versions = append(h.Versions, protocol.DocVersion{Name: v.Name, Rev: v.Rev, Author: v.Author, Created: v.Time.Format(time.RFC3339)})
		}
		for _, v := range snaps {
			h.Snapshots = append(h.Snapshots, protocol.DocVersion{Rev: v.Rev, Created: v.Time.Format(time.RFC3339)})
		}
		p.emit(p.collab, &h)
	case protocol.DocTypeRestore:
		var err error
		if m.Name != "" {
			_, err = s.svc.RestoreVersion(ctx, m.Doc, p.identity, m.Name)
		} else if m.Rev != nil {
			_, err = s.svc.RestoreRevision(ctx, m.Doc, p.identity, *m.Rev)
		}
		if err != nil {
			fail(err)
			return
		}
		done()
	default:
		p.emit(p.collab, &protocol.DocError{Type: protocol.DocTypeError, ReqID: m.ReqID, Code: protocol.DocErrBadMessage, Message: "unknown type " + m.Type})
	}
}

func opRaw(op ot.Op) json.RawMessage {
	b, err := json.Marshal(op)
	if err != nil {
		panic(err)
	}
	if op == nil {
		return json.RawMessage("[]")
	}
	return b
}

// standinEnv runs a real server for the meeting and the stand-in for
// documents.
func standinEnv(t *testing.T, room string) docsEnv {
	srv := startDocsServer(t)
	s := startStandin(t, srv.URL(), room)
	return docsEnv{pageURL: s.URL + "/", room: room, inject: true, standin: s}
}

// TestDocsStandinRejoinResubmits: see testDocsRejoin; the stand-in loses
// a submit, then an ack, before each re-join, which the real server cannot
// be made to do.
func TestDocsStandinRejoinResubmits(t *testing.T) {
	testDocsRejoin(t, standinEnv(t, "docs"))
}
