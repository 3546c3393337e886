package collab

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// replayLog writes a concurrent replay's events, one a line, for comparing
// tie rules: keystrokes (who typed what where, and the revision they had
// seen) and the server's log entries (what each submission became). A
// character is written as #n, its identity's index (typing order).
type replayLog struct {
	w           *bufio.Writer
	nTies, nWon int // ties seen at the server; decided as the recording has them
}

func (l *replayLog) op(op ot.Op) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, c := range op {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch c.Kind {
		case ot.Retain:
			fmt.Fprintf(&b, "r%d", c.N)
		case ot.Delete:
			fmt.Fprintf(&b, "d%d", c.N)
		case ot.Insert:
			rs := []rune(c.Text)
			fmt.Fprintf(&b, "i#%d", rs[0]-idBase)
			if len(rs) > 1 {
				fmt.Fprintf(&b, "..#%d", rs[len(rs)-1]-idBase)
			}
			fmt.Fprintf(&b, "{a%d g%d s%d h%v}", c.After, c.Gone, c.Seen, c.Held)
		}
	}
	b.WriteByte(']')
	return b.String()
}

func (l *replayLog) keystroke(i int, author string, rev int64, local ot.Op) {
	if l != nil {
		fmt.Fprintf(l.w, "k %d %s rev%d %s\n", i, author, rev, l.op(local))
	}
}

func (l *replayLog) submit(now int, author string, base, rev int64, in, out ot.Op) {
	if l != nil {
		fmt.Fprintf(l.w, "s %d %s base%d rev%d %s -> %s\n", now, author, base, rev, l.op(in), l.op(out))
	}
}

// TestReplayDiagnosis replays one trace at one lag and seed
// (HUDDLE_REPLAY_DIAG=trace,lag,seed,prefix) and writes prefix.log (the
// events, and every insert tie at the server: both inserts' context and
// who went first, against the recording's order, "t" lines) and
// prefix.ids (the final text as identity indices, one a line, then a
// blank line, then the recorded text's): run it under two tie rules and
// compare which ties each gets wrong and which characters each misplaces.
// It reports how many ties went as recorded: a measure that, unlike the
// edit distance, one unlucky tie does not swamp.
func TestReplayDiagnosis(t *testing.T) {
	spec := os.Getenv("HUDDLE_REPLAY_DIAG")
	if spec == "" {
		t.Skip("HUDDLE_REPLAY_DIAG=trace,lag,seed,prefix runs it")
	}
	f := strings.Split(spec, ",")
	if len(f) != 4 {
		t.Fatalf("HUDDLE_REPLAY_DIAG=%q: want trace,lag,seed,prefix", spec)
	}
	lag, _ := strconv.Atoi(f[1])
	seed, _ := strconv.ParseInt(f[2], 10, 64)
	lf, err := os.Create(f[3] + ".log")
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	l := &replayLog{w: bufio.NewWriter(lf)}
	final, recorded := "", ""
	d, n := concurrentReplayLogged(t, f[0]+".json.gz", lag, seed, l, &final, &recorded)
	if err := l.w.Flush(); err != nil {
		t.Fatal(err)
	}
	var ids strings.Builder
	for _, s := range []string{final, recorded} {
		for _, r := range s {
			fmt.Fprintf(&ids, "%d\n", r-idBase)
		}
		ids.WriteString("\n")
	}
	if err := os.WriteFile(f[3]+".ids", []byte(ids.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s lag %d seed %d: edit distance %d of %d; %d of %d insert ties at the server decided as recorded", f[0], lag, seed, d, n, l.nWon, l.nTies)
}

// tieSides are the two inserts of one tie at the server: a, the incoming
// op's insert, as transformed so far, and b, the logged one.
type tieSide struct {
	c      ot.Component
	author string
	held   bool // sent after more revisions than its author had seen typing it
}

type tie struct{ a, b tieSide }

// ties finds the inserts of in (from author, made against revision base)
// that tie with an insert of a logged op it misses, in the server's
// transform order.
func findTies(in ot.Op, author string, base int64, missed []logEntry) []tie {
	var out []tie
	a := in
	for _, e := range missed {
		bpos := map[int]ot.Component{}
		p := 0
		for _, c := range e.op {
			if c.Kind == ot.Insert {
				bpos[p] = c
			} else {
				p += c.N
			}
		}
		p = 0
		for _, c := range a {
			if c.Kind == ot.Insert {
				if cb, ok := bpos[p]; ok {
					out = append(out, tie{
						a: tieSide{c, author, c.Held},
						b: tieSide{cb, e.author, cb.Held},
					})
				}
			} else {
				p += c.N
			}
		}
		a = ot.Transform(a, e.op, ot.Right)
	}
	return out
}

// before reports whether identity x comes before y in text (ok false if
// either is missing).
func before(text string, x, y rune) (first, ok bool) {
	for _, r := range text {
		if r == x || r == y {
			if !strings.ContainsRune(text, map[bool]rune{true: y, false: x}[r == x]) {
				return false, false
			}
			return r == x, true
		}
	}
	return false, false
}

func (l *replayLog) ties(ts []tie, server, recorded string) {
	if l == nil {
		return
	}
	for _, t := range ts {
		ra, rb := []rune(t.a.c.Text)[0], []rune(t.b.c.Text)[0]
		got, ok1 := before(server, ra, rb)
		want, ok2 := before(recorded, ra, rb)
		if !ok1 || !ok2 {
			continue
		}
		l.nTies++
		if got == want {
			l.nWon++
		}
		fmt.Fprintf(l.w, "t a=%d,%d,%d,%v,%s,%d b=%d,%d,%d,%v,%s,%d got=%v want=%v #%d #%d\n",
			t.a.c.After, t.a.c.Gone, t.a.c.Seen, t.a.held, t.a.author, t.a.c.N,
			t.b.c.After, t.b.c.Gone, t.b.c.Seen, t.b.held, t.b.author, t.b.c.N, got, want, ra-idBase, rb-idBase)
	}
}
