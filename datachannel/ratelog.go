package datachannel

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

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
