package collab

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// TestAppendRecordMatchesEncodingJSON: the store's hand-written encoding
// decodes to the same record as encoding/json's, for awkward strings and
// ops with tie-break context.
func TestAppendRecordMatchesEncodingJSON(t *testing.T) {
	ctxOp := ot.Op{}.Retain(3).Insert("x").Normalize()
	ctxOp[1].After, ctxOp[1].Gone = 2, 1
	recs := []OpRecord{
		{Rev: 1, Author: "a", Op: ot.Op{}.Insert("hé\"llo\\\n\t\x01<&>\u2028😀"), Inverse: ot.Op{}.Delete(13), Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)},
		{Rev: 99, Author: "bad\xffutf8", ClientOpID: "c-7", Op: ctxOp, Inverse: ot.Op{}.Retain(3).Delete(1), Cause: CauseUndo, Target: 42, Time: time.Now()},
		{Rev: 2, Author: "z", Op: nil, Inverse: nil, Time: time.Unix(0, 0).In(time.FixedZone("x", 3600))},
	}
	// Two records with one time (a writer wake-up's), as a commit has them.
	recs = append(recs[:1], append([]OpRecord{{Rev: 7, Author: "a", Op: ot.Op{}.Delete(1), Time: recs[0].Time}}, recs[1:]...)...)
	var enc recordEncoder // one for all, as a commit uses it
	for _, r := range recs {
		if got, want := string(enc.append(nil, r)), string(appendRecord(nil, r)); got != want {
			t.Fatalf("the commit's encoder wrote %s, appendRecord %s", got, want)
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got := appendRecord(nil, r)
		var a, b OpRecord
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		ga, _ := json.Marshal(a)
		gb, _ := json.Marshal(b)
		if string(ga) != string(gb) || !a.Time.Equal(b.Time) {
			t.Fatalf("appendRecord %s\ndecodes differently from encoding/json's %s", got, want)
		}
	}
}

// TestAppendSnapshotMatchesEncodingJSON: the same for snapshots.
func TestAppendSnapshotMatchesEncodingJSON(t *testing.T) {
	for _, s := range []Snapshot{
		{Rev: 500, Text: "hé\"llo\\\n\t\x01<&>\u2028😀", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)},
		{Rev: 0, Text: "", Time: time.Unix(0, 0).In(time.FixedZone("x", 3600))},
	} {
		var got Snapshot
		if err := json.Unmarshal(appendSnapshot(nil, s), &got); err != nil {
			t.Fatalf("%s: %v", appendSnapshot(nil, s), err)
		}
		if got.Rev != s.Rev || got.Text != s.Text || !got.Time.Equal(s.Time) {
			t.Fatalf("appendSnapshot %s decodes to %+v", appendSnapshot(nil, s), got)
		}
	}
}
