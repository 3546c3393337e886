package protocol

import (
	"encoding/json"
	"time"
)

// Shared documents travel over two WebRTC data channels on the publisher
// PeerConnection, which the client always creates:
//
//   - ChannelCollab (reliable, ordered): document list, open/catch-up, ops,
//     acks, history, errors, document presence.
//   - ChannelCursors (unordered, no retransmits): cursor and selection
//     updates, at a bounded rate; a lost one is replaced by the next.
//
// Every message is one JSON object with a "type", like signaling messages,
// sent as a text frame. A message longer than MaxFrame bytes is split into
// chunk frames (see framing.go). Positions and lengths count Unicode code
// points. Ops use the wire form of collab/ot: [5, "ab", {"d": 3}] retains 5,
// inserts "ab", deletes 3.
const (
	ChannelCollab  = "collab"
	ChannelCursors = "cursors"
)

// Collab message types.
const (
	// client -> server (collab)
	DocTypeList    = "docList"     // DocRequest: list the room's documents
	DocTypeCreate  = "docCreate"   // DocRequest{Title, Text}
	DocTypeRename  = "docRename"   // DocRequest{Doc, Title}
	DocTypeDelete  = "docDelete"   // DocRequest{Doc}
	DocTypeLock    = "docLock"     // DocRequest{Doc, ReadOnly}: room admins only
	DocTypeOpen    = "open"        // DocRequest{Doc, Rev}: Rev < 0 asks for a snapshot
	DocTypeClose   = "close"       // DocRequest{Doc}
	DocTypeSubmit  = "submit"      // DocSubmit
	DocTypeUndo    = "undo"        // DocRequest{Doc}
	DocTypeRedo    = "redo"        // DocRequest{Doc}
	DocTypeName    = "nameVersion" // DocRequest{Doc, Name, Rev}
	DocTypeHistory = "history"     // DocRequest{Doc}: named versions and snapshots
	DocTypeRestore = "restore"     // DocRequest{Doc, Name} or DocRequest{Doc, Rev}
	// DocTypeHeartbeat says the client is still there; no answer. A client
	// sends it at least every HeartbeatInterval; one silent for
	// PresenceExpiry drops out of document presence and its cursors are
	// gone for the others, until it sends anything again.
	DocTypeHeartbeat = "heartbeat"

	// server -> client (collab)
	DocTypeDocs     = "docs"        // DocList: the room's documents, on request and on every change
	DocTypeOpened   = "opened"      // DocOpened: snapshot or catch-up
	DocTypeOp       = "op"          // DocOp: an op applied by someone else (or a server-made undo/restore)
	DocTypeAck      = "ack"         // DocAck: your op is durable at Rev
	DocTypeHistoryR = "historyList" // DocHistory
	DocTypeDone     = "done"        // DocDone: a request without other answer succeeded
	DocTypeError    = "docError"    // DocError
	DocTypePresence = "docPresence" // DocPresence: who has a document open
	DocTypeLagging  = "lagging"     // DocRequest{Doc}: you fell behind; open again from your Rev

	// both ways (cursors)
	DocTypeCursor     = "cursor"     // Cursor
	DocTypeCursorGone = "cursorGone" // Cursor{Doc, Participant}: sent on collab, it must not be lost
)

// Document presence: how often clients beat, and when the server takes a
// silent client for gone.
const (
	HeartbeatInterval = 10 * time.Second
	PresenceExpiry    = 30 * time.Second
)

// Collab error codes (DocError.Code).
const (
	DocErrBadMessage = "bad_message"      // not JSON, unknown type, missing field
	DocErrUnknownDoc = "unknown_doc"      // no such document in this room
	DocErrInvalidOp  = "invalid_op"       // the op does not fit the document
	DocErrTooOld     = "revision_too_old" // base revision older than the retained log: open again
	DocErrReadOnly   = "read_only"        // no edit grant, or the document is locked
	DocErrForbidden  = "forbidden"        // the grants do not allow it
	DocErrTooLarge   = "too_large"        // a message past the size limit
	DocErrNotOpen    = "not_open"         // submit or cursor for a document not opened
	DocErrConflict   = "conflict"         // name already taken, nothing to undo, ...
	DocErrInternal   = "internal"
	// DocErrUnavailable: nothing was saved, the store is unreachable or the
	// room moved to another node (cluster mode); retry, or open again.
	DocErrUnavailable = "unavailable"
)

// DocInfo describes one document of a room.
type DocInfo struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	ReadOnly bool     `json:"readOnly,omitempty"`
	Created  string   `json:"created"`           // RFC 3339
	Editors  []string `json:"editors,omitempty"` // participant ids that have it open
}

// DocRequest is every client request that names at most a document and a
// few fields. ReqID is echoed in the answer (docs, done, historyList,
// docError) so a client can match them.
type DocRequest struct {
	Type     string `json:"type"`
	ReqID    string `json:"reqId,omitempty"`
	Doc      string `json:"doc,omitempty"`
	Title    string `json:"title,omitempty"`
	Text     string `json:"text,omitempty"`
	Name     string `json:"name,omitempty"`
	Rev      *int64 `json:"rev,omitempty"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// DocSubmit sends one op made against revision Rev. ID is unique per
// participant identity; resubmitting the same ID after a reconnect is safe:
// the server applies it at most once and acks it again.
type DocSubmit struct {
	Type string          `json:"type"`
	Doc  string          `json:"doc"`
	Rev  int64           `json:"rev"`
	ID   string          `json:"id"`
	Op   json.RawMessage `json:"op"`
}

// DocList answers docList and follows every create, rename, delete and lock.
type DocList struct {
	Type  string `json:"type"`
	ReqID string `json:"reqId,omitempty"`
	// Doc is the document the change was about (the new one after
	// docCreate), so that the requester learns its id.
	Doc  string    `json:"doc,omitempty"`
	Docs []DocInfo `json:"docs"`
}

// DocOpened answers open. Either Text (a snapshot at Rev) or Ops (the ops
// after the revision the client asked for, ending at Rev) is set. From then
// on the client gets every op of the document, in order, as op or ack.
type DocOpened struct {
	Type     string  `json:"type"`
	ReqID    string  `json:"reqId,omitempty"`
	Doc      string  `json:"doc"`
	Rev      int64   `json:"rev"`
	Text     *string `json:"text,omitempty"`
	Ops      []DocOp `json:"ops,omitempty"`
	ReadOnly bool    `json:"readOnly,omitempty"` // this client may not edit it
}

// DocOp is one applied op: Rev is the revision it produced. Author is the
// participant identity that made it; ID its client op id (empty for ops the
// server made: undo, redo, restore).
type DocOp struct {
	Type   string          `json:"type,omitempty"`
	Doc    string          `json:"doc,omitempty"`
	Rev    int64           `json:"rev"`
	Op     json.RawMessage `json:"op"`
	Author string          `json:"author,omitempty"`
	ID     string          `json:"id,omitempty"`
}

// DocAck tells the author its op ID is durable at Rev. It arrives in order
// with the document's other ops.
type DocAck struct {
	Type string `json:"type"`
	Doc  string `json:"doc"`
	Rev  int64  `json:"rev"`
	ID   string `json:"id"`
}

// DocVersion is a named version or an automatic snapshot.
type DocVersion struct {
	Name    string `json:"name,omitempty"`
	Rev     int64  `json:"rev"`
	Author  string `json:"author,omitempty"`
	Created string `json:"created"`
}

// DocHistory answers history.
type DocHistory struct {
	Type      string       `json:"type"`
	ReqID     string       `json:"reqId,omitempty"`
	Doc       string       `json:"doc"`
	Versions  []DocVersion `json:"versions"`
	Snapshots []DocVersion `json:"snapshots"`
}

// DocDone answers a request that has no other answer (rename, delete, close,
// nameVersion, undo, redo, restore). For undo/redo/restore the op itself
// arrives as an op message.
type DocDone struct {
	Type  string `json:"type"`
	ReqID string `json:"reqId,omitempty"`
	Doc   string `json:"doc,omitempty"`
	Rev   int64  `json:"rev,omitempty"`
}

// DocError refuses a request or an op; nothing was changed. ReqID or ID
// (the client op id) say which.
type DocError struct {
	Type    string `json:"type"`
	ReqID   string `json:"reqId,omitempty"`
	Doc     string `json:"doc,omitempty"`
	ID      string `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// DocPresence lists who has a document open.
type DocPresence struct {
	Type         string   `json:"type"`
	Doc          string   `json:"doc"`
	Participants []string `json:"participants"`
}

// Cursor is a caret (Anchor == Head) or a selection in a document at
// revision Rev. Clients send Doc, Rev, Anchor, Head; the server adds
// Participant, Name and Color and transforms it to its latest revision
// before passing it on.
type Cursor struct {
	Type        string `json:"type"`
	Doc         string `json:"doc"`
	Rev         int64  `json:"rev"`
	Anchor      int    `json:"anchor"`
	Head        int    `json:"head"`
	Participant string `json:"participant,omitempty"`
	Name        string `json:"name,omitempty"`
	Color       string `json:"color,omitempty"`
	// Seq (server to client) numbers the cursor messages about one
	// participant, cursor and cursorGone alike, in the order the server
	// decided them: a cursor whose Seq is not above the participant's last
	// cursorGone is older than that removal and is dropped (the two travel
	// on different channels, so arrival order proves nothing).
	Seq int64 `json:"seq,omitempty"`
}
