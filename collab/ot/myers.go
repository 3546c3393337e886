package ot

// MinimalDiff returns an op that turns from into to with as few inserted
// and deleted code points as it can find: Myers' O((N+M)D) shortest edit
// script over the code points between the common prefix and suffix. Two
// distant changes stay two changes with the text between them retained,
// so an edit someone makes there concurrently survives (Diff would replace
// everything between them). Past a work bound (large, very different
// texts) it falls back to Diff's single replacement.
//
// Restoring a version uses it. The page's editor keeps Diff (prefix and
// suffix), which is exact for the one change an input event makes.
func MinimalDiff(from, to string) Op {
	a, b := []rune(from), []rune(to)
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	a, b = a[p:len(a)-s], b[p:len(b)-s]
	op := Op{}.retain(p)
	// Work is about (N+M)*D steps and D*D remembered numbers.
	maxD := 2000
	if n := len(a) + len(b); n > 0 {
		maxD = min(maxD, max(64, 50_000_000/n))
	}
	script, ok := myers(a, b, maxD)
	if !ok {
		return op.insert(string(b)).del(len(a)).trim()
	}
	for _, e := range script {
		switch e.kind {
		case Retain:
			op = op.retain(e.n)
		case Insert:
			op = op.insert(string(b[e.at : e.at+e.n]))
		case Delete:
			op = op.del(e.n)
		}
	}
	return op.trim()
}

type edit struct {
	kind  Kind
	at, n int // for an insert, b[at:at+n]
}

// myers returns the shortest edit script from a to b, or false if it needs
// more than maxD inserted plus deleted code points.
func myers(a, b []rune, maxD int) ([]edit, bool) {
	n, m := len(a), len(b)
	maxD = min(maxD, n+m)
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	var trace [][]int // trace[d]: v[off-d : off+d+1] after step d
	found := -1
	for d := 0; d <= maxD && found < 0; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1] // down: insert b[y]
			} else {
				x = v[off+k-1] + 1 // right: delete a[x]
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = x
			if x >= n && y >= m {
				found = d
				break
			}
		}
		trace = append(trace, append([]int(nil), v[off-d:off+d+1]...))
	}
	if found < 0 {
		return nil, false
	}
	at := func(d, k int) int { return trace[d][k+d] }
	// Walk back from (n, m), collecting edits in reverse.
	var rev []edit
	x, y := n, m
	for d := found; d > 0; d-- {
		k := x - y
		var pk int
		if k == -d || (k != d && at(d-1, k-1) < at(d-1, k+1)) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := at(d-1, pk)
		py := px - pk
		// Diagonal back to where the edit of step d ended.
		sx, sy := px, py
		if pk == k+1 {
			sy++
		} else {
			sx++
		}
		if x > sx {
			rev = append(rev, edit{kind: Retain, n: x - sx})
		}
		if pk == k+1 {
			rev = append(rev, edit{kind: Insert, at: py, n: 1})
		} else {
			rev = append(rev, edit{kind: Delete, n: 1})
		}
		x, y = px, py
	}
	if x > 0 {
		rev = append(rev, edit{kind: Retain, n: x})
	}
	out := make([]edit, 0, len(rev))
	for i := len(rev) - 1; i >= 0; i-- {
		e := rev[i]
		if l := len(out); l > 0 && out[l-1].kind == e.kind && (e.kind != Insert || out[l-1].at+out[l-1].n == e.at) {
			out[l-1].n += e.n
			continue
		}
		out = append(out, e)
	}
	return out, true
}
