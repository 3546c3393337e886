package ot

import (
	"math/rand"
	"strings"
	"testing"
)

// TestMinimalDiff: the op turns from into to, and is never longer (in
// inserted plus deleted code points) than Diff's.
func TestMinimalDiff(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	cost := func(op Op) int {
		n := 0
		for _, c := range op {
			if c.Kind != Retain {
				n += c.N
			}
		}
		return n
	}
	for i := 0; i < 20000; i++ {
		a := randText(r, 16)
		b := randText(r, 16)
		if i%2 == 0 { // an edited copy
			rs := []rune(a)
			for j := 0; j < 3 && len(rs) > 0; j++ {
				p := r.Intn(len(rs))
				rs = append(rs[:p], append([]rune(randText(r, 2)), rs[p+1:]...)...)
			}
			b = string(rs)
		}
		op := MinimalDiff(a, b)
		if err := op.Validate(); err != nil || !op.Equal(op.Normalize()) {
			t.Fatalf("MinimalDiff(%q, %q) = %v: %v", a, b, op, err)
		}
		if got := mustApply(t, a, op); got != b {
			t.Fatalf("MinimalDiff(%q, %q) = %v gives %q", a, b, op, got)
		}
		if cost(op) > cost(Diff(a, b)) {
			t.Fatalf("MinimalDiff(%q, %q) = %v costs more than Diff %v", a, b, op, Diff(a, b))
		}
	}
}

// TestMinimalDiffKeepsDistantChangesApart: two changes far apart are two
// changes; a concurrent edit between them survives the transform.
func TestMinimalDiffKeepsDistantChangesApart(t *testing.T) {
	mid := strings.Repeat("middle text ", 100)
	from := "Title A\n" + mid + "end A\n"
	to := "Title B\n" + mid + "end B\n"
	op := MinimalDiff(from, to)
	if op.String() != `[6,"B",{"d":1},1205,"B",{"d":1}]` {
		t.Fatalf("op %v: want two small changes around a retained middle", op)
	}
	other := Op{}.Retain(8 + 600).Insert("NEW ") // someone edits the middle meanwhile
	got := mustApply(t, mustApply(t, from, other), Transform(op, other, Right))
	if want := "Title B\n" + mid[:600] + "NEW " + mid[600:] + "end B\n"; got != want {
		t.Fatalf("concurrent edit lost: %q", got)
	}
	// Past the work bound it still gives a correct (coarse) op.
	big := strings.Repeat("ab", 100_000)
	other2 := strings.Repeat("ba", 100_000)
	if got := mustApply(t, big, MinimalDiff(big, other2)); got != other2 {
		t.Fatal("fallback diff is wrong")
	}
}
