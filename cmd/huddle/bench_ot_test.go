package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchOT: `huddle bench ot` replays a trace through both stores and
// checks the result against the trace's end; a trace whose end does not
// match is reported as an error, not as a number.
func TestBenchOT(t *testing.T) {
	dir := t.TempDir()
	write := func(name, end string) string {
		p := filepath.Join(dir, name)
		trace := `{"startContent":"ab","endContent":"` + end + `","txns":[
			{"patches":[[2,0,"c"],[0,1,""]]},{"patches":[[2,0,"😀d"]]}]}`
		if err := os.WriteFile(p, []byte(trace), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := benchOT([]string{"--trace", write("good.json", "bc😀d"), "--runs", "1"}); err != nil {
		t.Fatalf("bench ot: %v", err)
	}
	err := benchOT([]string{"--trace", write("bad.json", "nope"), "--runs", "1", "--store", "mem"})
	if err == nil || !strings.Contains(err.Error(), "differs from the trace's end") {
		t.Fatalf("mismatching trace: %v", err)
	}
	if err := benchOT(nil); err == nil || !strings.Contains(err.Error(), "--trace or --clients is required") {
		t.Fatalf("no trace: %v", err)
	}
}
