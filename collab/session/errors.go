package session

import (
	"context"
	"errors"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// WireError maps an error of the document service (package collab) to the
// wire code and message a client gets in a docError. It is the one place
// that decides which code a service error has; anything it does not know
// is internal.
func WireError(err error) (code, message string) {
	switch {
	case errors.Is(err, collab.ErrFenced), errors.Is(err, collab.ErrConflict):
		return protocol.DocErrUnavailable, "the room moved to another server: nothing was saved; reconnect, open the document again and resend"
	case errors.Is(err, collab.ErrUnavailable):
		return protocol.DocErrUnavailable, "the document store is unreachable: nothing was saved; retry in a moment"
	case errors.Is(err, collab.ErrUnknownDoc), errors.Is(err, collab.ErrDocDeleted):
		return protocol.DocErrUnknownDoc, "no such document in this room"
	case errors.Is(err, collab.ErrInvalidOp):
		return protocol.DocErrInvalidOp, "the op does not fit the document: " + err.Error()
	case errors.Is(err, collab.ErrFutureRevision):
		return protocol.DocErrInvalidOp, "base revision is ahead of the document"
	case errors.Is(err, collab.ErrRevisionTooOld):
		return protocol.DocErrTooOld, "base revision is older than the server keeps: open the document again"
	case errors.Is(err, collab.ErrReadOnly):
		return protocol.DocErrReadOnly, "the document is locked"
	case errors.Is(err, collab.ErrUnknownVersion):
		return protocol.DocErrBadMessage, "no such version"
	case errors.Is(err, collab.ErrVersionExists):
		return protocol.DocErrConflict, "that version name is already used"
	case errors.Is(err, collab.ErrNothingToUndo):
		return protocol.DocErrConflict, "nothing to undo"
	case errors.Is(err, collab.ErrNothingToRedo):
		return protocol.DocErrConflict, "nothing to redo"
	case errors.Is(err, collab.ErrDocExists):
		return protocol.DocErrConflict, "document already exists"
	case errors.Is(err, collab.ErrUnknownThread):
		return protocol.DocErrBadMessage, "no such comment thread or comment"
	case errors.Is(err, collab.ErrNotAuthor):
		return protocol.DocErrForbidden, "only its author may edit a comment"
	case errors.Is(err, collab.ErrCommentLimit):
		return protocol.DocErrLimit, err.Error()
	case errors.Is(err, collab.ErrBadRequest):
		return protocol.DocErrBadMessage, err.Error()
	case errors.Is(err, collab.ErrTooLarge):
		return protocol.DocErrTooLarge, err.Error()
	case errors.Is(err, protocol.ErrTooLarge):
		return protocol.DocErrTooLarge, "message larger than the limit"
	case errors.Is(err, protocol.ErrFrame):
		return protocol.DocErrBadMessage, "broken chunk sequence: " + err.Error()
	case errors.Is(err, collab.ErrClosed), errors.Is(err, context.Canceled):
		return protocol.DocErrInternal, "the server is shutting down"
	}
	return protocol.DocErrInternal, "internal error"
}

// docErr is a refusal on its way to the client.
type docErr struct {
	code, msg string
	err       error // the cause, for the log
}

func refuse(code, msg string) *docErr { return &docErr{code: code, msg: msg} }

// serviceErr is a refusal for an error of the service (or of framing).
func serviceErr(err error) *docErr {
	code, msg := WireError(err)
	return &docErr{code: code, msg: msg, err: err}
}
