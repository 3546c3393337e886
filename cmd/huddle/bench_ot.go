package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/collab/ot"
)

// benchOT replays an editing trace (josephg/editing-traces format) through
// the document service, one author pipelining its keystrokes as a client
// does (op i made against revision i), in memory and with the durable bbolt
// store, and reports ops per second. Every op is acknowledged (durably, for
// bbolt) before the replay counts as done, and the final text is checked
// against the trace's end.
func benchOT(args []string) error {
	f := newEnvFlags("bench ot")
	tracePath := f.String("trace", "", "editing trace (.json or .json.gz) to replay (required)")
	stores := f.String("store", "mem,bolt", "stores to replay through: mem, bolt or both")
	runs := f.Int("runs", 3, "replays per store (the best is reported)")
	var cc clientsConfig
	f.IntVar(&cc.clients, "clients", 0, "instead of a trace: this many SDK editors typing into one document of a server child")
	f.BoolVar(&cc.flat, "flat", false, "with --clients: each editor types flat out (one op in flight) instead of at a human rate")
	f.DurationVar(&cc.warmup, "warmup", 2*time.Second, "with --clients: typing before measuring")
	f.DurationVar(&cc.duration, "duration", 10*time.Second, "with --clients: how long to measure")
	f.StringVar(&cc.huddleBin, "huddle-bin", "", "with --clients: run the server from this binary (another build, to compare commits)")
	if err := f.parse(args); err != nil {
		return err
	}
	if cc.clients > 0 {
		return printClients(cc)
	}
	if *tracePath == "" {
		return fmt.Errorf("bench ot: --trace or --clients is required")
	}
	start, end, ops, err := readTrace(*tracePath)
	if err != nil {
		return fmt.Errorf("bench ot: %w", err)
	}
	fmt.Printf("trace %s: %d ops, %d code points at the end\n", *tracePath, ops.len(), len([]rune(end)))
	for _, kind := range list(*stores) {
		best := time.Duration(0)
		var cpu time.Duration
		var cs replayCommits
		for r := 0; r < max(1, *runs); r++ {
			d, c, rc, err := replayOnce(kind, start, end, ops)
			if err != nil {
				return fmt.Errorf("bench ot: %s: %w", kind, err)
			}
			if best == 0 || d < best {
				best, cpu, cs = d, c, rc
			}
		}
		fmt.Printf("%-5s %9.0f ops/s, %9.0f per CPU-second  (%d ops in %v, CPU %v; %d commits, %.0f ops and %.2f ms each; load %.1f)\n", kind,
			float64(ops.len())/best.Seconds(), float64(ops.len())/max(cpu.Seconds(), 1e-9), ops.len(), best.Round(time.Millisecond), cpu.Round(time.Millisecond),
			cs.n, float64(ops.len())/float64(max(1, cs.n)), ms(cs.took)/float64(max(1, cs.n)), loadAverage())
	}
	return nil
}

func printClients(cc clientsConfig) error {
	if cc.duration <= 0 || cc.warmup < 0 {
		return fmt.Errorf("bench ot: --duration must be positive")
	}
	r, err := benchOTClients(cc)
	if err != nil {
		return fmt.Errorf("bench ot --clients %d: %w", cc.clients, err)
	}
	fmt.Printf("load %.1f\n", loadAverage())
	mode := "typing"
	if cc.flat {
		mode = "flat out"
	}
	fmt.Printf("%d editors, %s, %.0fs: %d keystrokes, %d acks (%.0f ops/s), round trip p50 %.2f ms p99 %.2f ms max %.2f ms, server CPU %.0f%% of a core, editors' %.0f%%\n",
		cc.clients, mode, r.seconds, r.edits, r.acks, float64(r.acks)/r.seconds, ms(r.p50), ms(r.p99), ms(r.worst), 100*r.serverCPU/r.seconds, 100*r.editorCPU/r.seconds)
	if c := r.commits; c.commits > 0 {
		fmt.Printf("  server: %.0f group commits, %.1f ops each, %.2f ms each on average, over 32/64/128/256 ms: %.0f/%.0f/%.0f/%.0f\n", c.commits, c.ops/c.commits, 1000*c.seconds/c.commits,
			c.commits-c.fast, c.commits-c.upTo[0], c.commits-c.upTo[1], c.commits-c.upTo[2])
	}
	return nil
}

// replayCommits counts the group commits of a replay and the time the
// store took for them.
type replayCommits struct {
	n    int
	took time.Duration
}

// replayOnce replays ops into a fresh store of the given kind and returns
// the wall and CPU time from the first submission to the last ack, and
// the commits.
func replayOnce(kind, start, end string, ops *tracePatches) (time.Duration, time.Duration, replayCommits, error) {
	var rc replayCommits
	wall, cpu, err := replay(kind, start, end, ops, func(n int, took time.Duration, err error) {
		rc.n++ // the writer goroutine calls this, before the acks it precedes
		rc.took += took
	})
	return wall, cpu, rc, err
}

func replay(kind, start, end string, ops *tracePatches, onCommit func(int, time.Duration, error)) (time.Duration, time.Duration, error) {
	var store collab.Store
	switch kind {
	case "mem":
		store = collab.NewMemStore()
	case "bolt":
		dir, err := os.MkdirTemp("", "huddle-bench-ot")
		if err != nil {
			return 0, 0, err
		}
		defer os.RemoveAll(dir)
		bs, err := collab.OpenBoltStore(dir, 0)
		if err != nil {
			return 0, 0, err
		}
		store = bs
	default:
		return 0, 0, fmt.Errorf("unknown store %q (want mem or bolt)", kind)
	}
	defer store.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := collab.NewService(collab.Config{Store: store, Logger: quiet, OnCommit: onCommit})
	if err != nil {
		return 0, 0, err
	}
	defer svc.Close()
	ctx := context.Background()
	if _, err := svc.CreateDoc(ctx, collab.CreateRequest{ID: "trace", Room: "bench", Text: start}); err != nil {
		return 0, 0, err
	}
	if _, err := svc.Text(ctx, "trace"); err != nil { // load it before the clock starts
		return 0, 0, err
	}
	// Acks are read as the transport reads them (collab/session): by a
	// callback on the writer, in submit order, no channel per op.
	var acked int
	var first error
	done := make(chan struct{})
	onResult := func(req collab.SubmitRequest, r collab.Result) {
		acked++ // only the one writer goroutine calls this
		if first == nil && r.Err != nil {
			first = r.Err
		} else if first == nil && r.Ack.Rev != int64(acked) {
			first = fmt.Errorf("op %s acked at revision %d, want %d", req.ClientOpID, r.Ack.Rev, acked)
		}
		if acked == ops.len() {
			close(done)
		}
	}
	cpu0 := cpuTime()
	t0 := time.Now()
	for i := range ops.len() {
		svc.SubmitFunc(collab.SubmitRequest{DocID: "trace", Author: "typist", ClientOpID: strconv.Itoa(i), BaseRev: int64(i), Op: ops.op(i)}, onResult)
	}
	<-done
	if first != nil {
		return 0, 0, first
	}
	wall, cpu := time.Since(t0), cpuTime()-cpu0
	snap, err := svc.Text(ctx, "trace")
	if err != nil {
		return 0, 0, err
	}
	if snap.Text != end || snap.Rev != int64(ops.len()) {
		return 0, 0, fmt.Errorf("replay ended at revision %d with a text that differs from the trace's end", snap.Rev)
	}
	return wall, cpu, nil
}

// tracePatches is a trace's keystrokes, held without pointers (an index
// into one string of all inserted text), and each op is made when it is
// submitted, as a server makes it from the wire. The parsed ops held all
// through the replay were 260 thousand small objects the garbage collector
// walked on every cycle: about half of the replay's GC work, spent on the
// bench's own data.
type tracePatches struct {
	patches []tracePatch
	text    string // every insert, one after the other
}

type tracePatch struct{ pos, del, off, n int32 } // n: the insert's bytes at text[off:]

func (t *tracePatches) len() int { return len(t.patches) }

// op is patch i as a canonical op: retain, insert, delete.
func (t *tracePatches) op(i int) ot.Op {
	p := t.patches[i]
	op := make(ot.Op, 0, 3)
	if p.pos > 0 {
		op = append(op, ot.Component{Kind: ot.Retain, N: int(p.pos)})
	}
	if p.n > 0 {
		ins := t.text[p.off : p.off+p.n]
		op = append(op, ot.Component{Kind: ot.Insert, N: utf8.RuneCountInString(ins), Text: ins})
	}
	if p.del > 0 {
		op = append(op, ot.Component{Kind: ot.Delete, N: int(p.del)})
	}
	return op
}

// readTrace reads a trace's start and end text and its patches.
func readTrace(path string) (start, end string, ops *tracePatches, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", "", nil, err
	}
	defer fh.Close()
	var rd io.Reader = fh
	if zr, err := gzip.NewReader(fh); err == nil {
		rd = zr
	} else if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return "", "", nil, err
	}
	var tr struct {
		StartContent string `json:"startContent"`
		EndContent   string `json:"endContent"`
		Txns         []struct {
			Patches [][3]json.RawMessage `json:"patches"`
		} `json:"txns"`
	}
	if err := json.NewDecoder(rd).Decode(&tr); err != nil {
		return "", "", nil, fmt.Errorf("decode %s: %w", path, err)
	}
	ops = &tracePatches{}
	var text strings.Builder
	for _, txn := range tr.Txns {
		for _, p := range txn.Patches {
			var pos, del int32
			var ins string
			if json.Unmarshal(p[0], &pos) != nil || json.Unmarshal(p[1], &del) != nil || json.Unmarshal(p[2], &ins) != nil || pos < 0 || del < 0 {
				return "", "", nil, fmt.Errorf("%s: malformed patch %s", path, p)
			}
			ops.patches = append(ops.patches, tracePatch{pos: pos, del: del, off: int32(text.Len()), n: int32(len(ins))})
			text.WriteString(ins)
		}
	}
	ops.text = text.String()
	return tr.StartContent, tr.EndContent, ops, nil
}
