package collab

import (
	"errors"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// Sentinel errors. Every error the service returns wraps one of these (or a
// context error) with the operation and document for the log, so that the
// transport can map it to a protocol error code with errors.Is.
var (
	ErrUnknownDoc     = errors.New("unknown document")
	ErrDocExists      = errors.New("document already exists")
	ErrInvalidOp      = ot.ErrInvalidOp // malformed op, or one that does not fit the text
	ErrRevisionTooOld = errors.New("base revision is older than the retained log")
	ErrFutureRevision = errors.New("base revision is ahead of the document")
	ErrReadOnly       = errors.New("document is read-only")
	ErrUnknownVersion = errors.New("unknown version")
	ErrVersionExists  = errors.New("version name already used")
	ErrNothingToUndo  = errors.New("nothing to undo")
	ErrNothingToRedo  = errors.New("nothing to redo")
	ErrLagging        = errors.New("subscriber fell too far behind")
	ErrDocDeleted     = errors.New("document was deleted")
	ErrClosed         = errors.New("document service is closed")
	ErrBadRequest     = errors.New("bad request") // missing ids, empty names
	ErrTooLarge       = errors.New("too large")   // an op or document over Config.MaxOpBytes / MaxDocBytes

	// Cluster stores (RedisStore). ErrFenced: the write came from a node
	// that no longer holds the room's ownership epoch. ErrConflict: the
	// stored revision is not the one this writer built on (someone else
	// wrote). Both mean this node's copy of the document is stale; the
	// service unloads it. ErrUnavailable: the store could not be reached
	// (or could not persist); nothing was acknowledged, retry later.
	ErrFenced      = errors.New("this node no longer owns the room")
	ErrConflict    = errors.New("the stored revision moved under this writer")
	ErrUnavailable = errors.New("document store unavailable, retry")
)
