package sdk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// DocInfo describes one shared document of the room.
type DocInfo = protocol.DocInfo

// DocError is the server's refusal of a document request or of an edit
// (protocol docError). Code is one of the protocol.DocErr* codes. An edit
// the server refused has been rolled back locally.
type DocError struct {
	Code    string
	Message string
	Doc     string
	OpID    string // the client op id of a refused edit
}

func (e *DocError) Error() string {
	s := "document"
	if e.Doc != "" {
		s += " " + e.Doc
	}
	return fmt.Sprintf("%s: %s: %s", s, e.Code, e.Message)
}

// IsDocError reports whether err is a DocError with the given code.
func IsDocError(err error, code string) bool {
	var de *DocError
	return errors.As(err, &de) && de.Code == code
}

func docErrorOf(m *protocol.DocError) *DocError {
	return &DocError{Code: m.Code, Message: m.Message, Doc: m.Doc, OpID: m.ID}
}

// Docs is the room's shared documents, spoken over the collab and cursors
// data channels of the publisher PeerConnection. Get it with Room.Docs.
// Its methods are safe for concurrent use. Requests wait for the channels
// to open (bounded by their context); across a reconnect, open documents
// are re-opened from their last revision and unacknowledged edits are
// resubmitted, and so they are when the server could not store edits
// (docoutage.go).
type Docs struct {
	room   *Room
	log    *slog.Logger
	prefix string // random per session: client op ids never repeat across sessions of one identity

	mu      sync.Mutex
	gen     uint64 // link generation: events from older channels are ignored
	collab  msgLink
	cursors msgLink
	up      chan struct{} // closed while a link is up
	cut     error         // the server closed the current link: nothing will bring it back

	beatEvery time.Duration  // heartbeat period (heartbeat.go)
	beatStop  chan struct{}  // closes to stop the current link's heartbeat
	beats     sync.WaitGroup // the heartbeat goroutine
	reqSeq    uint64
	docSeq    uint64
	pending   map[string]*pendingReq
	open      map[string]*Document
	list      []DocInfo
	known     map[string]bool

	onList  func([]DocInfo)
	onError func(error)
	rawWait map[string]func(any) // answers to submits made outside a document's state machine, by op id
}

type pendingReq struct {
	gen    uint64
	handle func(m any, err error) // m is the answer; err is a DocError or ErrDisconnected
}

func newDocs(r *Room, log *slog.Logger) *Docs {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Docs{
		room: r, log: log, prefix: hex.EncodeToString(b[:]),
		up: make(chan struct{}), pending: map[string]*pendingReq{}, beatEvery: protocol.HeartbeatInterval,
		open: map[string]*Document{}, known: map[string]bool{},
	}
}

// OnListChange sets a function called with the room's document list
// whenever the server sends it (after every create, rename, delete, lock).
func (d *Docs) OnListChange(fn func([]DocInfo)) {
	d.mu.Lock()
	d.onList = fn
	d.mu.Unlock()
}

// OnError sets a function that receives document errors no call is waiting
// for (for example a refused edit: the edit is rolled back).
func (d *Docs) OnError(fn func(error)) {
	d.mu.Lock()
	d.onError = fn
	d.mu.Unlock()
}

func (d *Docs) reportError(err error) {
	d.mu.Lock()
	fn := d.onError
	d.mu.Unlock()
	if fn != nil {
		fn(err)
	} else {
		d.log.Warn("documents", "err", err)
	}
}

// linkUp is called when the collab channel of generation gen opens.
func (d *Docs) linkUp(gen uint64, collab, cursors msgLink) {
	d.mu.Lock()
	if gen != d.gen {
		d.mu.Unlock()
		return
	}
	d.collab, d.cursors = collab, cursors
	d.cut = nil
	d.startBeatLocked(collab)
	close(d.up)
	docs := make([]*Document, 0, len(d.open))
	for _, doc := range d.open {
		docs = append(docs, doc)
	}
	d.mu.Unlock()
	for _, doc := range docs {
		doc.reopen(false)
	}
}

// linkDown forgets the channels of generation gen (or of any generation,
// when newGen is set, which also starts generation gen+1). Requests
// waiting on them fail with ErrDisconnected.
func (d *Docs) linkDown(gen uint64) { d.down(gen, ErrDisconnected) }

func (d *Docs) down(gen uint64, why error) {
	d.mu.Lock()
	if gen != d.gen {
		d.mu.Unlock()
		return
	}
	d.gen++
	d.stopBeatLocked()
	if why == ErrCutOff {
		d.cut = why
	}
	wasUp := d.collab != nil
	d.collab, d.cursors = nil, nil
	if wasUp {
		d.up = make(chan struct{})
	}
	var failed []*pendingReq
	for id, p := range d.pending {
		failed = append(failed, p)
		delete(d.pending, id)
	}
	docs := make([]*Document, 0, len(d.open))
	for _, doc := range d.open {
		docs = append(docs, doc)
	}
	d.mu.Unlock()
	for _, p := range failed {
		p.handle(nil, why)
	}
	for _, doc := range docs {
		doc.disconnected()
	}
}

// cutOff is linkDown for a collab channel that closed while its room
// stayed connected: the server ended the participant's documents session
// (it did not read its answers, or it left), and no reconnect will open a
// new channel. Requests waiting, and later ones, fail with ErrCutOff
// instead of waiting for a link until the room reconnects.
func (d *Docs) cutOff(gen uint64) { d.down(gen, ErrCutOff) }

// generation returns the current link generation, for binding new channels.
func (d *Docs) generation() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen
}

// waitLink returns the current link, waiting for one.
func (d *Docs) waitLink(ctx context.Context) (msgLink, uint64, error) {
	for {
		d.mu.Lock()
		l, gen, up, cut := d.collab, d.gen, d.up, d.cut
		d.mu.Unlock()
		if l != nil {
			return l, gen, nil
		}
		if cut != nil {
			return nil, 0, fmt.Errorf("documents: %w", cut)
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("documents: waiting for the data channel: %w", ctx.Err())
		case <-d.room.ctx.Done():
			return nil, 0, fmt.Errorf("documents: %w", context.Cause(d.room.ctx))
		}
	}
}

func (d *Docs) nextReqID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reqSeq++
	return "r" + strconv.FormatUint(d.reqSeq, 10)
}

// sendOn marshals m and sends it on link l, in the background: callers on
// the channels' read goroutines must never wait for send buffer room.
func (d *Docs) sendAsync(l msgLink, m any) {
	data, err := json.Marshal(m)
	if err != nil {
		d.log.Error("documents: marshal", "err", err)
		return
	}
	go func() {
		if err := l.send(d.room.ctx, data); err != nil {
			d.log.Debug("documents: send", "err", err)
		}
	}()
}

// request sends a collab request with a fresh reqId and waits for the
// answer, which is returned (a *protocol.DocList, *protocol.DocDone, ...).
// A docError answer is returned as *DocError.
func (d *Docs) request(ctx context.Context, req *protocol.DocRequest) (any, error) {
	return d.roundTrip(ctx, req.Type, func(id string) any { req.ReqID = id; return req })
}

// roundTrip is request for any message: build makes it with the reqId.
func (d *Docs) roundTrip(ctx context.Context, typ string, build func(reqID string) any) (any, error) {
	l, gen, err := d.waitLink(ctx)
	if err != nil {
		return nil, err
	}
	reqID := d.nextReqID()
	type answer struct {
		m   any
		err error
	}
	ch := make(chan answer, 1)
	d.mu.Lock()
	if gen != d.gen {
		d.mu.Unlock()
		return nil, ErrDisconnected
	}
	d.pending[reqID] = &pendingReq{gen: gen, handle: func(m any, err error) { ch <- answer{m, err} }}
	d.mu.Unlock()
	data, err := json.Marshal(build(reqID))
	if err != nil {
		d.forget(reqID)
		return nil, err
	}
	if err := l.send(ctx, data); err != nil {
		d.forget(reqID)
		return nil, fmt.Errorf("documents: %s: %w", typ, err)
	}
	select {
	case a := <-ch:
		return a.m, a.err
	case <-ctx.Done():
		d.forget(reqID)
		return nil, fmt.Errorf("documents: %s: %w", typ, ctx.Err())
	case <-d.room.ctx.Done():
		d.forget(reqID)
		return nil, fmt.Errorf("documents: %w", context.Cause(d.room.ctx))
	}
}

func (d *Docs) forget(reqID string) {
	d.mu.Lock()
	delete(d.pending, reqID)
	d.mu.Unlock()
}

// takePending removes and returns the handler waiting for reqID.
func (d *Docs) takePending(reqID string) *pendingReq {
	if reqID == "" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.pending[reqID]
	delete(d.pending, reqID)
	return p
}

// List returns the room's documents.
func (d *Docs) List(ctx context.Context) ([]DocInfo, error) {
	m, err := d.request(ctx, &protocol.DocRequest{Type: protocol.DocTypeList})
	if err != nil {
		return nil, err
	}
	a, ok := m.(*docsAnswer)
	if !ok {
		return nil, fmt.Errorf("documents: list answered with %T", m)
	}
	return a.list.Docs, nil
}

// Create makes a document with a title and initial text and returns it.
func (d *Docs) Create(ctx context.Context, title, text string) (DocInfo, error) {
	d.mu.Lock()
	before := make(map[string]bool, len(d.known))
	for id := range d.known {
		before[id] = true
	}
	d.mu.Unlock()
	m, err := d.request(ctx, &protocol.DocRequest{Type: protocol.DocTypeCreate, Title: title, Text: text})
	if err != nil {
		return DocInfo{}, err
	}
	a, ok := m.(*docsAnswer)
	if !ok {
		return DocInfo{}, fmt.Errorf("documents: create answered with %T", m)
	}
	l := a.list
	if a.doc != "" {
		for _, di := range l.Docs {
			if di.ID == a.doc {
				return di, nil
			}
		}
	}
	// The answer is the room's list; the new document is the newest one
	// with this title that was not known before.
	var found *DocInfo
	for i := range l.Docs {
		di := &l.Docs[i]
		if di.Title != title {
			continue
		}
		if found == nil || (!before[di.ID] && (before[found.ID] || di.Created >= found.Created)) {
			found = di
		}
	}
	if found == nil {
		return DocInfo{}, fmt.Errorf("documents: created %q but the answer does not list it", title)
	}
	return *found, nil
}

// Rename changes a document's title.
func (d *Docs) Rename(ctx context.Context, docID, title string) error {
	_, err := d.request(ctx, &protocol.DocRequest{Type: protocol.DocTypeRename, Doc: docID, Title: title})
	return err
}

// Delete deletes a document and its history.
func (d *Docs) Delete(ctx context.Context, docID string) error {
	_, err := d.request(ctx, &protocol.DocRequest{Type: protocol.DocTypeDelete, Doc: docID})
	return err
}

// Lock makes a document read-only for everyone, or editable again (room
// admins only).
func (d *Docs) Lock(ctx context.Context, docID string, readOnly bool) error {
	_, err := d.request(ctx, &protocol.DocRequest{Type: protocol.DocTypeLock, Doc: docID, ReadOnly: readOnly})
	return err
}

// History lists a document's named versions and automatic snapshots.
func (d *Docs) History(ctx context.Context, docID string) (*protocol.DocHistory, error) {
	m, err := d.request(ctx, &protocol.DocRequest{Type: protocol.DocTypeHistory, Doc: docID})
	if err != nil {
		return nil, err
	}
	h, ok := m.(*protocol.DocHistory)
	if !ok {
		return nil, fmt.Errorf("documents: history answered with %T", m)
	}
	return h, nil
}

// NameVersion names revision rev of a document (its latest when rev < 0).
func (d *Docs) NameVersion(ctx context.Context, docID, name string, rev int64) error {
	req := &protocol.DocRequest{Type: protocol.DocTypeName, Doc: docID, Name: name}
	if rev >= 0 {
		req.Rev = &rev
	}
	_, err := d.request(ctx, req)
	return err
}

// Open opens a document: it returns once the text has arrived. From then
// on the Document follows every edit. Opening an open document returns
// the same Document. If the server cannot load it now (cluster mode: its
// store is unreachable), Open returns that *DocError (code unavailable):
// try again in a moment.
func (d *Docs) Open(ctx context.Context, docID string) (*Document, error) {
	if _, _, err := d.waitLink(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	doc := d.open[docID]
	if doc == nil {
		doc = newDocument(d, docID)
		d.open[docID] = doc
	}
	d.mu.Unlock()
	doc.mu.Lock()
	already := doc.opened && !doc.closed
	doc.mu.Unlock()
	if already {
		return doc, nil
	}
	doc.reopen(false)
	select {
	case <-doc.ready:
		if err := doc.openError(); err != nil {
			return nil, err
		}
		return doc, nil
	case <-ctx.Done():
		doc.forget()
		return nil, fmt.Errorf("open %s: %w", docID, ctx.Err())
	case <-d.room.ctx.Done():
		return nil, fmt.Errorf("open %s: %w", docID, context.Cause(d.room.ctx))
	}
}

// idPrefix returns a fresh client-op-id prefix (a document's state machine
// is rebuilt after a refused edit; its ids must not repeat).
func (d *Docs) idPrefix() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.docSeq++
	return d.prefix + "." + strconv.FormatUint(d.docSeq, 10)
}

func (d *Docs) doc(id string) *Document {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.open[id]
}

// currentLink returns the collab and cursors links, nil while down.
func (d *Docs) currentLink() (collab, cursors msgLink) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.collab, d.cursors
}

func (d *Docs) currentLinkGen() (msgLink, uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.collab, d.gen
}

// register makes handle wait for the answer to reqID, unless the link of
// generation gen is gone already.
func (d *Docs) register(gen uint64, reqID string, handle func(m any, err error)) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if gen != d.gen || d.collab == nil {
		return false
	}
	d.pending[reqID] = &pendingReq{gen: gen, handle: handle}
	return true
}

// rawAnswer hands an ack or docError for a hand-made submit to its waiter.
func (d *Docs) rawAnswer(id string, m any) bool {
	d.mu.Lock()
	fn := d.rawWait[id]
	delete(d.rawWait, id)
	d.mu.Unlock()
	if fn == nil {
		return false
	}
	fn(m)
	return true
}

// waitRaw makes fn receive the ack or docError for op id.
func (d *Docs) waitRaw(id string, fn func(any)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rawWait == nil {
		d.rawWait = map[string]func(any){}
	}
	d.rawWait[id] = fn
}
