package datachannel

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func encode(m any) ([]byte, error) { return json.Marshal(m) }

// docErr is a refusal on its way to the client.
type docErr struct {
	code, msg string
	err       error // the cause, for the log
}

func refuse(code, msg string) *docErr { return &docErr{code: code, msg: msg} }

// serviceErr maps an error of the document service to a protocol code.
func serviceErr(err error) *docErr {
	code, msg := protocol.DocErrInternal, "internal error"
	switch {
	case errors.Is(err, collab.ErrUnknownDoc), errors.Is(err, collab.ErrDocDeleted):
		code, msg = protocol.DocErrUnknownDoc, "no such document in this room"
	case errors.Is(err, collab.ErrInvalidOp):
		code, msg = protocol.DocErrInvalidOp, "the op does not fit the document: "+err.Error()
	case errors.Is(err, collab.ErrFutureRevision):
		code, msg = protocol.DocErrInvalidOp, "base revision is ahead of the document"
	case errors.Is(err, collab.ErrRevisionTooOld):
		code, msg = protocol.DocErrTooOld, "base revision is older than the server keeps: open the document again"
	case errors.Is(err, collab.ErrReadOnly):
		code, msg = protocol.DocErrReadOnly, "the document is locked"
	case errors.Is(err, collab.ErrUnknownVersion):
		code, msg = protocol.DocErrBadMessage, "no such version"
	case errors.Is(err, collab.ErrVersionExists):
		code, msg = protocol.DocErrConflict, "that version name is already used"
	case errors.Is(err, collab.ErrNothingToUndo):
		code, msg = protocol.DocErrConflict, "nothing to undo"
	case errors.Is(err, collab.ErrNothingToRedo):
		code, msg = protocol.DocErrConflict, "nothing to redo"
	case errors.Is(err, collab.ErrDocExists):
		code, msg = protocol.DocErrConflict, "document already exists"
	case errors.Is(err, collab.ErrBadRequest):
		code, msg = protocol.DocErrBadMessage, err.Error()
	case errors.Is(err, collab.ErrClosed), errors.Is(err, context.Canceled):
		code, msg = protocol.DocErrInternal, "the server is shutting down"
	}
	return &docErr{code: code, msg: msg, err: err}
}
