package sdk

// What arrives on the documents channels: the collab channel's answers,
// ops, acks, presence and comments, routed to the request or document
// they are for, and the cursors channel's cursors.

import (
	"encoding/json"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// docsAnswer is a docs message with the document it was about (servers
// that name it: the new one after docCreate).
type docsAnswer struct {
	list *protocol.DocList
	doc  string
}

type envelope struct {
	Type  string `json:"type"`
	ReqID string `json:"reqId"`
	Doc   string `json:"doc"`
}

// collabMessages makes the message each collab-channel type decodes into.
var collabMessages = map[string]func() any{
	protocol.DocTypeDocs:       func() any { return &protocol.DocList{} },
	protocol.DocTypeOpened:     func() any { return &protocol.DocOpened{} },
	protocol.DocTypeOp:         func() any { return &protocol.DocOp{} },
	protocol.DocTypeAck:        func() any { return &protocol.DocAck{} },
	protocol.DocTypeHistoryR:   func() any { return &protocol.DocHistory{} },
	protocol.DocTypeDone:       func() any { return &protocol.DocDone{} },
	protocol.DocTypeError:      func() any { return &protocol.DocError{} },
	protocol.DocTypePresence:   func() any { return &protocol.DocPresence{} },
	protocol.DocTypeLagging:    func() any { return &protocol.DocRequest{} },
	protocol.DocTypeCursorGone: func() any { return &protocol.Cursor{} },
	protocol.DocTypeCursor:     func() any { return &protocol.Cursor{} },
	protocol.DocTypeComments:   func() any { return &protocol.CommentList{} },
	protocol.DocTypeThread:     func() any { return &protocol.ThreadUpdate{} },
}

// onCollab handles one message from the collab channel of generation gen.
func (d *Docs) onCollab(gen uint64, data []byte) {
	if d.generation() != gen {
		return
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		d.log.Warn("documents: bad message from server", "err", err)
		return
	}
	newMsg, ok := collabMessages[env.Type]
	if !ok {
		d.log.Debug("documents: ignoring message", "type", env.Type)
		return
	}
	m := newMsg()
	if err := json.Unmarshal(data, m); err != nil {
		d.log.Warn("documents: bad message from server", "type", env.Type, "err", err)
		return
	}
	switch m := m.(type) {
	case *protocol.DocList:
		d.handleList(m, env.Doc)
	case *protocol.DocOpened:
		if p := d.takePending(m.ReqID); p != nil {
			p.handle(m, nil)
		}
	case *protocol.DocOp:
		if doc := d.doc(m.Doc); doc != nil {
			doc.handleOp(m.Rev, m.ID, m.Author, m.Op)
		}
	case *protocol.DocAck:
		if d.rawAnswer(m.ID, m) {
			return
		}
		if doc := d.doc(m.Doc); doc != nil {
			doc.handleAck(m)
		}
	case *protocol.DocHistory:
		if p := d.takePending(m.ReqID); p != nil {
			p.handle(m, nil)
		}
	case *protocol.DocDone:
		if p := d.takePending(m.ReqID); p != nil {
			p.handle(m, nil)
		}
	case *protocol.DocError:
		d.handleDocError(m)
	case *protocol.DocPresence:
		if doc := d.doc(m.Doc); doc != nil {
			doc.handlePresence(m.Participants)
		}
	case *protocol.CommentList:
		if doc := d.doc(m.Doc); doc != nil {
			doc.handleThreads(m.Threads)
		}
	case *protocol.ThreadUpdate:
		if doc := d.doc(m.Doc); doc != nil {
			doc.handleThreads([]protocol.CommentThread{m.Thread})
		}
		if p := d.takePending(m.ReqID); p != nil {
			p.handle(m, nil)
		}
	case *protocol.DocRequest: // lagging
		if doc := d.doc(m.Doc); doc != nil {
			doc.reopen(true)
		}
	case *protocol.Cursor:
		if doc := d.doc(m.Doc); doc != nil {
			if env.Type == protocol.DocTypeCursorGone {
				doc.cursorGone(m.Participant, m.Seq)
			} else {
				doc.handleCursor(m)
			}
		}
	}
}

// handleList keeps the room's document list and answers the request that
// asked for it, if any.
func (d *Docs) handleList(m *protocol.DocList, doc string) {
	d.mu.Lock()
	d.list = m.Docs
	for _, di := range m.Docs {
		d.known[di.ID] = true
	}
	fn := d.onList
	d.mu.Unlock()
	if p := d.takePending(m.ReqID); p != nil {
		p.handle(&docsAnswer{list: m, doc: doc}, nil)
	}
	if fn != nil {
		fn(m.Docs)
	}
}

// handleDocError routes a refusal: to the request or raw submit it
// answers, to a document whose store is in trouble or whose submit was
// refused, else to the error callback.
func (d *Docs) handleDocError(m *protocol.DocError) {
	de := docErrorOf(m)
	if p := d.takePending(m.ReqID); p != nil {
		p.handle(nil, de)
		return
	}
	if m.ID != "" && d.rawAnswer(m.ID, de) {
		return
	}
	if doc := d.doc(m.Doc); doc != nil && storeTrouble(de) {
		// The server's copy is gone and nothing unacknowledged was
		// saved (docoutage.go): keep the edits, open it again.
		doc.pauseSaving(de)
		return
	}
	if doc := d.doc(m.Doc); doc != nil && m.ID != "" && doc.handleSubmitError(de) {
		return
	}
	d.reportError(de)
}

// onCursors handles one message from the cursors channel.
func (d *Docs) onCursors(gen uint64, data []byte) {
	if d.generation() != gen {
		return
	}
	var c protocol.Cursor
	if err := json.Unmarshal(data, &c); err != nil || c.Type != protocol.DocTypeCursor {
		return
	}
	if doc := d.doc(c.Doc); doc != nil {
		doc.handleCursor(&c)
	}
}
