// Package client is the client half of Huddle's server-authoritative OT: a
// pure state machine (no networking, no goroutines) that an SDK or a test
// drives with local edits and with what the server sends.
//
// The client has at most one op in flight. Edits made while it waits for
// the ack are composed into one buffered op, sent when the ack arrives:
//
//	Synchronized --local edit--> AwaitingConfirm --local edit--> AwaitingWithBuffer
//	     ^                          |  ^                              |
//	     +-----------ack------------+  +-------------ack--------------+
//
// A remote op (someone else's, in server order) is transformed over the
// in-flight and buffered ops before it is applied locally, and they over it,
// with the server's op on the Left: the server gives ops already in its log
// the left side, so both ends break insert ties the same way.
//
// The transport must deliver acks and remote ops in server order (the
// document service broadcasts the submitter's own op too, tagged with its
// clientOpID, which is the natural ack). After a reconnect: feed the ops
// since Revision() through Receive (your own op among them counts as the
// ack), then send Resubmit(): the in-flight op again, with the same
// clientOpID and base revision, so the server's de-duplication can answer
// with the original ack if it had already applied it.
package client

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// State is where the client is in the ack cycle.
type State int

// The three states.
const (
	Synchronized State = iota
	AwaitingConfirm
	AwaitingWithBuffer
)

func (s State) String() string {
	return [...]string{"synchronized", "awaiting confirm", "awaiting with buffer"}[s]
}

// ErrOutOfOrder means the server's messages skipped or repeated a revision;
// the caller should resynchronise (fetch ops since Revision()).
var ErrOutOfOrder = errors.New("server message out of order")

// ErrUnexpectedAck means an ack arrived for an op that is not in flight.
var ErrUnexpectedAck = errors.New("ack for an op that is not in flight")

// Submission is an op to send to the server.
type Submission struct {
	ClientOpID string
	BaseRev    int64 // the server revision the op was made against
	Op         ot.Op
}

// Client tracks one document on one client.
type Client struct {
	prefix string
	seq    uint64

	rev      int64 // last server revision seen
	doc      *ot.Doc
	inflight *Submission // sent, awaiting ack
	buffer   ot.Op       // composed local edits made since inflight was sent
	hasBuf   bool
}

// New returns a client for a document the server reported at revision rev
// with text. idPrefix makes this client's clientOpIDs unique per author
// (for example a session id); IDs are idPrefix + a counter.
func New(idPrefix string, rev int64, text string) *Client {
	return &Client{prefix: idPrefix, rev: rev, doc: ot.NewDoc(text)}
}

// State reports the ack-cycle state.
func (c *Client) State() State {
	switch {
	case c.inflight == nil:
		return Synchronized
	case !c.hasBuf:
		return AwaitingConfirm
	}
	return AwaitingWithBuffer
}

// Revision is the last server revision this client has seen.
func (c *Client) Revision() int64 { return c.rev }

// Text is the client's current text, including its unacknowledged edits.
func (c *Client) Text() string { return c.doc.String() }

// Len is the client's current text length in code points.
func (c *Client) Len() int { return c.doc.Len() }

// Inflight returns the op awaiting its ack, if any.
func (c *Client) Inflight() (Submission, bool) {
	if c.inflight == nil {
		return Submission{}, false
	}
	return *c.inflight, true
}

func (c *Client) newSubmission(op ot.Op) *Submission {
	c.seq++
	return &Submission{ClientOpID: c.prefix + strconv.FormatUint(c.seq, 10), BaseRev: c.rev, Op: op}
}

// ApplyLocal applies an edit the user made to the local text. If nothing
// was in flight it returns the submission to send now; otherwise the edit
// joins the buffer and nil is returned. An op that does not fit the local
// text is rejected (ot.ErrInvalidOp) and changes nothing.
func (c *Client) ApplyLocal(op ot.Op) (*Submission, error) {
	if _, err := c.doc.Apply(op); err != nil {
		return nil, fmt.Errorf("local edit: %w", err)
	}
	if op.IsNoop() {
		return nil, nil
	}
	op = stampSeen(op.Normalize(), c.rev, c.inflight != nil)
	switch {
	case c.inflight == nil:
		c.inflight = c.newSubmission(op)
		return c.inflight, nil
	case c.hasBuf:
		c.buffer = ot.Compose(c.buffer, op)
	default:
		c.buffer, c.hasBuf = op, true
	}
	return nil, nil
}

// stampSeen returns op with each insert stamped with when it was typed
// (ot.Component.Seen: revisions 0..rev seen). An edit buffered behind the
// in-flight op reaches the server a round trip later than it was typed;
// the stamp lets a tie with someone who typed at that spot meanwhile go
// by typing order, not arrival. held marks an edit typed while another
// was in flight (ot.Component.Held): it will wait in the buffer, so its
// arrival says even less about when it was typed. Stamps already there
// are kept.
func stampSeen(op ot.Op, rev int64, held bool) ot.Op {
	op = op.Clone() // Normalize may return the caller's op itself
	for i := range op {
		if op[i].Kind == ot.Insert && op[i].Seen == 0 {
			op[i].Seen = rev + 1
			op[i].Held = held
		}
	}
	return op
}

// Ack records the server's acknowledgement of the in-flight op at revision
// rev. If edits were buffered meanwhile, it returns them as the next
// submission to send.
func (c *Client) Ack(rev int64, clientOpID string) (*Submission, error) {
	if c.inflight == nil || c.inflight.ClientOpID != clientOpID {
		return nil, fmt.Errorf("ack %s at revision %d: %w", clientOpID, rev, ErrUnexpectedAck)
	}
	if rev != c.rev+1 {
		return nil, fmt.Errorf("ack %s at revision %d, client at %d: %w", clientOpID, rev, c.rev, ErrOutOfOrder)
	}
	c.rev = rev
	c.inflight = nil
	if !c.hasBuf {
		return nil, nil
	}
	c.inflight = c.newSubmission(c.buffer)
	c.buffer, c.hasBuf = nil, false
	return c.inflight, nil
}

// Remote applies another author's op, which the server logged at revision
// rev, and returns it as transformed for the local text (what an editor
// should apply to its view, and what to move local cursors through).
func (c *Client) Remote(rev int64, op ot.Op) (ot.Op, error) {
	if rev != c.rev+1 {
		return nil, fmt.Errorf("remote op at revision %d, client at %d: %w", rev, c.rev, ErrOutOfOrder)
	}
	if err := op.Validate(); err != nil {
		return nil, fmt.Errorf("remote op at revision %d: %w", rev, err)
	}
	if c.inflight != nil {
		var server ot.Op
		c.inflight.Op, server = ot.Transform(c.inflight.Op, op, ot.Right), ot.Transform(op, c.inflight.Op, ot.Left)
		op = server
		// The in-flight op is now expressed against revision rev, as the
		// server will see it after transforming it over this op.
		if c.hasBuf {
			c.buffer, op = ot.Transform(c.buffer, op, ot.Right), ot.Transform(op, c.buffer, ot.Left)
		}
	}
	if _, err := c.doc.Apply(op); err != nil {
		return nil, fmt.Errorf("remote op at revision %d does not fit local text: %w", rev, err)
	}
	c.rev = rev
	return op, nil
}

// Receive handles one op from the server's ordered stream: the client's own
// in-flight op (matched by clientOpID) is its ack, anything else is remote.
// It returns the op to apply to the local view (nil for an ack) and the next
// submission to send, if any.
func (c *Client) Receive(rev int64, clientOpID string, op ot.Op) (view ot.Op, send *Submission, err error) {
	if c.inflight != nil && clientOpID != "" && clientOpID == c.inflight.ClientOpID {
		send, err = c.Ack(rev, clientOpID)
		return nil, send, err
	}
	view, err = c.Remote(rev, op)
	return view, nil, err
}

// Resubmit returns the in-flight op to send again after a reconnect, with
// its original clientOpID, or nil if nothing is in flight. Call it after
// the catch-up ops have been received: the op has been transformed over
// them, so its base is the current revision, not the one it was first sent
// against (the server would transform it over those ops a second time).
// The server's de-duplication by clientOpID still recognises it.
func (c *Client) Resubmit() *Submission {
	if c.inflight == nil {
		return nil
	}
	s := *c.inflight
	s.BaseRev = c.rev
	return &s
}

// RemoteSelection maps another participant's selection, which it reported
// against server revision rev, into the local text (through the in-flight
// and buffered edits). ok is false when rev is not the client's current
// revision: cursor updates are lossy, so a stale one is simply dropped.
func (c *Client) RemoteSelection(sel ot.Selection, rev int64) (ot.Selection, bool) {
	if rev != c.rev {
		return sel, false
	}
	if c.inflight != nil {
		sel = ot.TransformSelection(sel, c.inflight.Op, false)
	}
	if c.hasBuf {
		sel = ot.TransformSelection(sel, c.buffer, false)
	}
	return sel, true
}
