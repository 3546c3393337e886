package collab

import (
	"time"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// DocMeta describes a document. Documents belong to a room; the service
// does not check who may see a room, that is the caller's job.
type DocMeta struct {
	ID       string    `json:"id"`
	Room     string    `json:"room"`
	Title    string    `json:"title"`
	ReadOnly bool      `json:"readOnly,omitempty"` // locked: edits are refused with ErrReadOnly
	Created  time.Time `json:"created"`
}

// Cause says why an op was made, so that per-author undo can tell edits
// from its own undos and redos.
type Cause string

// Causes of ops.
const (
	CauseEdit    Cause = ""
	CauseUndo    Cause = "undo"
	CauseRedo    Cause = "redo"
	CauseRestore Cause = "restore"
)

// OpRecord is one entry of a document's revision log: the op as applied
// (already transformed) that took the document to revision Rev.
type OpRecord struct {
	Rev        int64  `json:"rev"`
	Author     string `json:"author"`
	ClientOpID string `json:"cid,omitempty"`
	Op         ot.Op  `json:"op"`
	Inverse    ot.Op  `json:"inv"` // undoes Op on the text at Rev; kept for undo
	Cause      Cause  `json:"cause,omitempty"`
	// Target is, for an undo, the revision it undid; for a redo, the undo
	// revision it redid. Undo stacks are rebuilt from it after a reload.
	Target int64     `json:"target,omitempty"`
	Time   time.Time `json:"t"`

	// shared is set on the copies a broadcast hands to subscribers: one
	// encoding for all of them (subscription.go, SharedEncoding).
	shared *sharedEncoding
}

// Snapshot is a document's full text at a revision.
type Snapshot struct {
	Rev  int64     `json:"rev"`
	Text string    `json:"text"`
	Time time.Time `json:"t"`
}

// Version is a named revision, kept with its text so that it outlives log
// compaction.
type Version struct {
	Name   string    `json:"name"`
	Rev    int64     `json:"rev"`
	Text   string    `json:"text"`
	Author string    `json:"author"`
	Time   time.Time `json:"t"`
}

// Commit is what a document's writer persists in one step.
type Commit struct {
	Ops      []OpRecord // appended in revision order
	Snapshot *Snapshot  // an automatic snapshot to save with them, or nil
	// DropOpsBefore removes log entries with Rev < DropOpsBefore (0: none).
	DropOpsBefore int64
	// KeepSnapshots removes all but the newest KeepSnapshots automatic
	// snapshots (0: keep all).
	KeepSnapshots int
}

// Store is what the document service needs from persistence. Commit must
// be durable (on disk, fsynced) when it returns nil: the service
// acknowledges ops only after that (RedisStore: once Redis replied, which
// is as durable as its persistence setting makes it: docs/CLUSTER.md). Implementations must be safe for
// concurrent use; the service calls them from one writer per document.
// Methods on a missing document return an error wrapping ErrUnknownDoc.
type Store interface {
	CreateDoc(meta DocMeta, initial Snapshot) error // ErrDocExists if the id is taken
	UpdateDoc(meta DocMeta) error
	Doc(id string) (DocMeta, error)
	Docs(room string) ([]DocMeta, error) // sorted by creation time, then id
	DeleteDoc(id string) error           // the document and all its history

	Commit(docID string, c Commit) error
	// Ops returns the retained log entries with after < Rev <= upTo, in order.
	Ops(docID string, after, upTo int64) ([]OpRecord, error)
	// LogBounds returns the first and last retained log revisions (0, 0 if
	// the log is empty).
	LogBounds(docID string) (first, last int64, err error)
	// Snapshot returns the newest snapshot with Rev <= atOrBefore.
	Snapshot(docID string, atOrBefore int64) (Snapshot, bool, error)
	// Snapshots lists the automatic snapshots (texts omitted), oldest first.
	Snapshots(docID string) ([]Snapshot, error)

	PutVersion(docID string, v Version) error // ErrVersionExists if the name is taken
	Version(docID, name string) (Version, error)
	Versions(docID string) ([]Version, error) // texts omitted, oldest first

	Close() error
}
