package sfu

import (
	"context"
	"log/slog"
	"testing"
)

// lastLevel records the level of the last line logged.
type lastLevel struct{ level *slog.Level }

func (h lastLevel) Enabled(context.Context, slog.Level) bool { return true }
func (h lastLevel) Handle(_ context.Context, r slog.Record) error {
	*h.level = r.Level
	return nil
}
func (h lastLevel) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h lastLevel) WithGroup(string) slog.Handler      { return h }

// Pion's teardown noise, as Pion prints it, reaches the operator at debug;
// any other warning of Pion's stays a warning.
func TestPionTeardownNoiseIsDebug(t *testing.T) {
	var got slog.Level
	l := pionLoggerFactory{log: slog.New(lastLevel{&got})}.NewLogger("pc")
	for _, c := range []struct {
		format string
		args   []any
		want   slog.Level
	}{
		{"Failed to open RTCP stream for %d: %v", []any{782687492, "failed to cast child"}, slog.LevelDebug},
		{"Failed to accept RTP %v", []any{"the agent is closed"}, slog.LevelDebug},
		{"Failed to start manager: %v", []any{"connecting canceled by caller"}, slog.LevelDebug},
		{"undeclaredMediaProcessor failed to open SrtpSession: %v", []any{"the DTLS transport has not started yet"}, slog.LevelDebug},
		{"Failed to start SCTP: %v", []any{"something new"}, slog.LevelWarn},
	} {
		l.Warnf(c.format, c.args...)
		if got != c.want {
			t.Errorf("%q logged at %v, want %v", c.format, got, c.want)
		}
	}
}
