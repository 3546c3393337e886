// Package ratelog is a logger that a misbehaving client cannot use to fill
// the server's log: it logs at most a burst of lines at once and then one
// per second, and says how many it left out.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Log is a rate-limited slog.Logger; safe for concurrent use.
type Log struct {
	log   *slog.Logger
	burst float64

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
}

// New returns a Log that writes to l.
func New(l *slog.Logger) *Log {
	return &Log{log: l, burst: 10, tokens: 10, last: time.Now()}
}

func (r *Log) allow() (bool, int) {
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

func (r *Log) emit(level slog.Level, msg string, args ...any) {
	ok, n := r.allow()
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	r.log.Log(context.Background(), level, msg, args...)
}

// Info logs at info level unless over the rate.
func (r *Log) Info(msg string, args ...any) { r.emit(slog.LevelInfo, msg, args...) }

// Warn logs at warn level unless over the rate.
func (r *Log) Warn(msg string, args ...any) { r.emit(slog.LevelWarn, msg, args...) }
