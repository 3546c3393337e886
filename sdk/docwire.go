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
	var m any
	switch env.Type {
	case protocol.DocTypeDocs:
		m = &protocol.DocList{}
	case protocol.DocTypeOpened:
		m = &protocol.DocOpened{}
	case protocol.DocTypeOp:
		m = &protocol.DocOp{}
	case protocol.DocTypeAck:
		m = &protocol.DocAck{}
	case protocol.DocTypeHistoryR:
		m = &protocol.DocHistory{}
	case protocol.DocTypeDone:
		m = &protocol.DocDone{}
	case protocol.DocTypeError:
		m = &protocol.DocError{}
	case protocol.DocTypePresence:
		m = &protocol.DocPresence{}
	case protocol.DocTypeLagging:
		m = &protocol.DocRequest{}
	case protocol.DocTypeCursorGone, protocol.DocTypeCursor:
		m = &protocol.Cursor{}
	case protocol.DocTypeComments:
		m = &protocol.CommentList{}
	case protocol.DocTypeThread:
		m = &protocol.ThreadUpdate{}
	default:
		d.log.Debug("documents: ignoring message", "type", env.Type)
		return
	}
	if err := json.Unmarshal(data, m); err != nil {
		d.log.Warn("documents: bad message from server", "type", env.Type, "err", err)
		return
	}
	switch m := m.(type) {
	case *protocol.DocList:
		d.mu.Lock()
		d.list = m.Docs
		for _, di := range m.Docs {
			d.known[di.ID] = true
		}
		fn := d.onList
		d.mu.Unlock()
		if p := d.takePending(m.ReqID); p != nil {
			p.handle(&docsAnswer{list: m, doc: env.Doc}, nil)
		}
		if fn != nil {
			fn(m.Docs)
		}
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
