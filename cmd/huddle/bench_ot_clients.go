package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/collab/ot"
	"github.com/huddle-rtc/huddle/sdk"
)

// clientsConfig is one `huddle bench ot --clients N` run.
type clientsConfig struct {
	clients          int
	flat             bool // each editor keeps one op in flight, flat out
	warmup, duration time.Duration
	huddleBin        string
}

// clientsResult is what the editors saw, and what the server spent.
type clientsResult struct {
	acks      int // submits acknowledged in the window
	edits     int // keystrokes made in the window
	seconds   float64
	p50, p99  time.Duration // submit to ack, over the window's acks
	worst     time.Duration
	serverCPU float64 // seconds, the child's user+system time in the window
	editorCPU float64 // seconds, this process's (the editors') in the window
	commits   commitStats
}

// commitStats are the server's group commits (its metrics), over the window.
type commitStats struct {
	commits, ops, seconds float64
	fast                  float64 // commits that took at most 32 ms (a histogram bucket)
	// upTo counts commits that took at most 64, 128 and 256 ms (buckets):
	// a round trip's tail is where the store's fsync tail is.
	upTo [3]float64
}

// commitTailBuckets are the histogram bounds upTo counts, in order.
var commitTailBuckets = [3]string{"0.064", "0.128", "0.256"}

// readCommitStats reads the document commit counters of a huddle server.
func readCommitStats(base string) commitStats {
	var c commitStats
	resp, err := http.Get(strings.TrimSuffix(base, "/") + "/metrics")
	if err != nil {
		return c
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		x, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			continue
		}
		switch name {
		case "huddle_documents_commit_seconds_count":
			c.commits = x
		case "huddle_documents_commit_seconds_sum":
			c.seconds = x
		case "huddle_documents_ops_committed_total":
			c.ops = x
		case `huddle_documents_commit_seconds_bucket{le="0.032"}`:
			c.fast = x
		}
		for i, le := range commitTailBuckets {
			if name == `huddle_documents_commit_seconds_bucket{le="`+le+`"}` {
				c.upTo[i] = x
			}
		}
	}
	return c
}

// benchOTClients runs N SDK editors against one document of a server in a
// child process (the same dev-mode server `bench sfu` starts: loopback,
// bbolt store in a temporary directory, so every ack is durable), over
// WebRTC data channels as the page and bots speak it. Each editor types at
// its own line. Typing is human-ish: bursts of 3-20 keystrokes 60-200 ms
// apart, pauses of 0.3-3 s, one keystroke in ten a backspace. With flat
// each editor types, waits for the ack, and types again. The round trip is
// the SDK's (DocAck.RTT): from sending a submit to its ack, so a keystroke
// typed while an op is in flight, which the SDK composes into the next
// submit, is counted once with that submit.
func benchOTClients(cfg clientsConfig) (clientsResult, error) {
	var res clientsResult
	ctx, cancel := context.WithTimeout(context.Background(), cfg.warmup+cfg.duration+2*time.Minute)
	defer cancel()
	ch, err := startChild(false, benchConfig{huddleBin: cfg.huddleBin})
	if err != nil {
		return res, err
	}
	defer ch.stop()
	rooms, docs, err := openEditors(ctx, ch.url, cfg.clients)
	defer func() {
		for _, r := range rooms {
			r.Leave()
		}
	}()
	if err != nil {
		return res, err
	}

	w := &ackWindow{}
	for _, d := range docs {
		d.OnAck(w.ack)
	}
	tctx, stopTyping := context.WithCancel(ctx)
	var wg sync.WaitGroup
	edits := make([]int, len(docs))
	errs := make([]error, len(docs))
	for i, d := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			edits[i], errs[i] = typeInto(tctx, d, cfg.flat, rand.New(rand.NewPCG(uint64(i), 7)), w.counting)
		}()
	}
	time.Sleep(cfg.warmup)
	cpu0, err := procCPU(ch.pid())
	if err != nil {
		stopTyping()
		wg.Wait()
		return res, err
	}
	c0 := readCommitStats(ch.url)
	e0 := cpuTime()
	w.open()
	time.Sleep(cfg.duration)
	res.seconds = w.close(ctx)
	cpu1, err := procCPU(ch.pid())
	res.editorCPU = (cpuTime() - e0).Seconds()
	c1 := readCommitStats(ch.url)
	res.commits = commitStats{commits: c1.commits - c0.commits, ops: c1.ops - c0.ops, seconds: c1.seconds - c0.seconds, fast: c1.fast - c0.fast}
	for i := range c1.upTo {
		res.commits.upTo[i] = c1.upTo[i] - c0.upTo[i]
	}
	stopTyping()
	wg.Wait()
	if err != nil {
		return res, err
	}
	for _, e := range errs {
		if e != nil {
			return res, e
		}
	}
	if err := converged(ctx, docs); err != nil {
		return res, err
	}
	res.serverCPU = cpu1 - cpu0
	for _, n := range edits {
		res.edits += n
	}
	rtts := w.roundTrips()
	res.acks = len(rtts)
	if len(rtts) == 0 {
		return res, errors.New("no submit was acknowledged in the window")
	}
	res.p50, res.p99, res.worst = rtts[len(rtts)/2], rtts[len(rtts)*99/100], rtts[len(rtts)-1]
	return res, nil
}

// editorLineLen is each editor's line in the document, which it types at
// the start of.
const editorLineLen = 40

// openEditors joins n editors to a fresh room of the server at url; the
// first creates a document of one line per editor, and each opens it with
// its cursor at the start of its own line. The rooms joined are returned
// even on an error, for the caller to leave.
func openEditors(ctx context.Context, url string, n int) ([]*sdk.Room, []*sdk.Document, error) {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	room := fmt.Sprintf("bench-ot-%d", time.Now().UnixNano())
	var rooms []*sdk.Room
	var docs []*sdk.Document
	var docID string
	for i := range n {
		name := fmt.Sprintf("editor%d", i)
		tok, err := devToken(url, name, room)
		if err != nil {
			return rooms, nil, err
		}
		r, err := sdk.Join(ctx, url, tok, sdk.Options{Logger: quiet})
		if err != nil {
			return rooms, nil, fmt.Errorf("%s: %w", name, err)
		}
		rooms = append(rooms, r)
		if i == 0 {
			text := strings.Repeat(strings.Repeat("-", editorLineLen-1)+"\n", n)
			info, err := r.Docs().Create(ctx, "bench", text)
			if err != nil {
				return rooms, nil, fmt.Errorf("create document: %w", err)
			}
			docID = info.ID
		}
		d, err := r.Docs().Open(ctx, docID)
		if err != nil {
			return rooms, nil, fmt.Errorf("%s: open: %w", name, err)
		}
		d.SetCursor(i*editorLineLen, i*editorLineLen)
		docs = append(docs, d)
	}
	return rooms, docs, nil
}

// ackWindow is the measuring window: acks of submits sent inside it,
// keystrokes made in it. It opens after the warm-up and closes after the
// duration, but not before one ack of a submit sent in it has arrived, so
// that a result is never empty however slow the machine.
type ackWindow struct {
	mu       sync.Mutex
	rtts     []time.Duration
	from, to time.Time // from is zero until the warm-up ends, to until the window closes
}

// in reports whether t falls in the window; w.mu is held.
func (w *ackWindow) in(t time.Time) bool {
	return !w.from.IsZero() && !t.Before(w.from) && (w.to.IsZero() || t.Before(w.to))
}

// ack keeps an ack's round trip if its submit was sent in the window.
func (w *ackWindow) ack(a sdk.DocAck) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.in(a.Sent) {
		w.rtts = append(w.rtts, a.RTT)
	}
}

// counting reports whether a keystroke made now counts.
func (w *ackWindow) counting() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.in(time.Now())
}

func (w *ackWindow) open() {
	w.mu.Lock()
	w.from = time.Now()
	w.mu.Unlock()
}

// close closes the window once an ack of a submit sent in it has arrived
// (or ctx ends) and returns how long it was open, in seconds.
func (w *ackWindow) close(ctx context.Context) float64 {
	for {
		w.mu.Lock()
		if len(w.rtts) > 0 || ctx.Err() != nil {
			w.to = time.Now()
			s := w.to.Sub(w.from).Seconds()
			w.mu.Unlock()
			return s
		}
		w.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

// roundTrips returns the window's round trips, sorted.
func (w *ackWindow) roundTrips() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	slices.Sort(w.rtts)
	return slices.Clone(w.rtts)
}

// converged waits until every editor's edits are acknowledged and every
// editor has the server's head, then checks that all have the same text:
// every editor got every ack and every op.
func converged(ctx context.Context, docs []*sdk.Document) error {
	last := int64(0)
	for i, d := range docs {
		if err := d.WaitSynced(ctx); err != nil {
			return fmt.Errorf("editor%d: %w", i, err)
		}
		last = max(last, d.Rev())
	}
	var want string
	for i, d := range docs {
		if err := waitRev(ctx, d, last); err != nil {
			return fmt.Errorf("editor%d: %w", i, err)
		}
		if i == 0 {
			want = d.Text()
		} else if d.Text() != want {
			return fmt.Errorf("editor%d's text differs from editor0's at revision %d", i, d.Rev())
		}
	}
	return nil
}

// typeInto types into d until ctx ends and returns the keystrokes made
// while counting() said the window was open.
func typeInto(ctx context.Context, d *sdk.Document, flat bool, rng *rand.Rand, counting func() bool) (int, error) {
	n := 0
	key := func() error {
		_, head := d.Cursor()
		head = min(head, d.Len())
		var err error
		if rng.IntN(10) == 0 && head > 0 {
			err = d.Delete(head-1, 1)
		} else {
			err = d.Insert(head, string(rune('a'+rng.IntN(26))))
		}
		if errors.Is(err, ot.ErrInvalidOp) {
			return nil // a remote delete shortened the text since Cursor: skip the key
		}
		if err == nil && counting() {
			n++
		}
		return err
	}
	sleep := func(lo, hi time.Duration) bool {
		t := time.NewTimer(lo + time.Duration(rng.Int64N(int64(hi-lo))))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for ctx.Err() == nil {
		if flat {
			if err := key(); err != nil {
				return n, err
			}
			if err := d.WaitSynced(ctx); err != nil && ctx.Err() == nil {
				return n, err
			}
			continue
		}
		for range 3 + rng.IntN(18) {
			if err := key(); err != nil {
				return n, err
			}
			if !sleep(60*time.Millisecond, 200*time.Millisecond) {
				return n, nil
			}
		}
		if !sleep(300*time.Millisecond, 3*time.Second) {
			return n, nil
		}
	}
	return n, nil
}

// waitRev waits until d has seen revision rev.
func waitRev(ctx context.Context, d *sdk.Document, rev int64) error {
	for d.Rev() < rev {
		if ctx.Err() != nil {
			return fmt.Errorf("at revision %d, waiting for %d: %w", d.Rev(), rev, ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
