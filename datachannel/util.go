package datachannel

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

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

// rateLog logs at most burst lines at once and then one per second, and
// says how many it left out, so that a client sending garbage cannot fill
// the server's log.
type rateLog struct {
	log   *slog.Logger
	burst float64

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
}

func newRateLog(l *slog.Logger) *rateLog {
	return &rateLog{log: l, burst: 10, tokens: 10, last: time.Now()}
}

func (r *rateLog) allow() (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.tokens = min(r.burst, r.tokens+now.Sub(r.last).Seconds())
	r.last = now
	if r.tokens < 1 {
		r.suppressed++
		return false, 0
	}
	r.tokens--
	n := r.suppressed
	r.suppressed = 0
	return true, n
}

func (r *rateLog) emit(level slog.Level, msg string, args ...any) {
	ok, n := r.allow()
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	r.log.Log(context.Background(), level, msg, args...)
}

func (r *rateLog) info(msg string, args ...any) { r.emit(slog.LevelInfo, msg, args...) }
func (r *rateLog) warn(msg string, args ...any) { r.emit(slog.LevelWarn, msg, args...) }

// reader turns frames of one channel into messages. After a broken chunk
// sequence it skips the rest of that message quietly, so one bad message
// gives one error.
type reader struct {
	r        protocol.Reassembler
	limit    int
	skipping bool
}

func newReader(limit int) *reader {
	rd := &reader{limit: limit}
	rd.r.SetLimit(limit)
	return rd
}

// add returns a whole message, nil while one is incomplete (or skipped),
// or an error for a frame that breaks the rules.
func (rd *reader) add(frame []byte) ([]byte, error) {
	if len(frame) > 0 && frame[0] == '#' {
		if rd.skipping {
			if idx, ok := chunkIndex(frame); ok && idx != 0 {
				return nil, nil
			}
			rd.skipping = false
		}
	} else {
		rd.skipping = false
		if len(frame) > rd.limit {
			return nil, protocol.ErrTooLarge
		}
	}
	msg, err := rd.r.Add(frame)
	if err != nil {
		rd.skipping = len(frame) > 0 && frame[0] == '#'
		return nil, err
	}
	return msg, nil
}

// chunkIndex reads the index of a chunk frame "#id:index:...".
func chunkIndex(frame []byte) (int, bool) {
	i := 1
	for i < len(frame) && frame[i] != ':' {
		i++
	}
	j := i + 1
	for j < len(frame) && frame[j] != ':' {
		j++
	}
	if j >= len(frame) || j-i > 11 {
		return 0, false
	}
	n, err := strconv.Atoi(string(frame[i+1 : j]))
	return n, err == nil
}
