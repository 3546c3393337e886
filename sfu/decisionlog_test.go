package sfu_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// decisionLog keeps the server's last adaptive-quality decisions (the
// allocator's moves and holds, probe verdicts, pauses: debug lines that
// production does not print) and prints them when the test fails, so a
// shaped-link failure that happens only under a loaded suite says why.
// Warnings and errors go to stderr as with startServer.
type decisionLog struct {
	t     *testing.T
	mu    *sync.Mutex
	lines *[]string
	attrs string
	pion  bool // Pion's logger: its debug lines are not wanted (and
	// formatting some of them races with Pion's own writers)
	warn slog.Handler
}

const decisionLines = 400

// decisionPrefixes are the messages kept (sfu/allocator.go, probe.go).
var decisionPrefixes = []string{"allocator ", "probe cluster", "video paused"}

func newDecisionLog(t *testing.T) *decisionLog {
	return &decisionLog{t: t, mu: &sync.Mutex{}, lines: &[]string{},
		warn: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})}
}

func (d *decisionLog) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || (l >= slog.LevelDebug && !d.pion)
}

func (d *decisionLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		return d.warn.Handle(ctx, r)
	}
	if d.pion {
		return nil
	}
	keep := false
	for _, p := range decisionPrefixes {
		keep = keep || strings.HasPrefix(r.Message, p)
	}
	if !keep {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s%s", r.Time.Format("15:04:05.000"), r.Message, d.attrs)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s", a)
		return true
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(*d.lines) >= decisionLines {
		*d.lines = (*d.lines)[1:]
	}
	*d.lines = append(*d.lines, b.String())
	return nil
}

func (d *decisionLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *d
	for _, a := range attrs {
		c.attrs += " " + a.String()
		c.pion = c.pion || a.Key == "pion"
	}
	c.warn = d.warn.WithAttrs(attrs)
	return &c
}

func (d *decisionLog) WithGroup(name string) slog.Handler {
	c := *d
	c.warn = d.warn.WithGroup(name)
	return &c
}

func (d *decisionLog) dumpIfFailed() {
	if !d.t.Failed() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.t.Logf("the server's last %d adaptive-quality decisions:", len(*d.lines))
	for _, l := range *d.lines {
		d.t.Log(l)
	}
}
