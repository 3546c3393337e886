package sdk

import (
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestOverloadBackoff: overload closes soon after one another double the
// wait's base up to its cap; one long after the last starts over. The
// drawn wait is never immediate and never over the base.
func TestOverloadBackoff(t *testing.T) {
	var o overloadBackoff
	t0 := time.Unix(1000, 0)
	want := protocol.OverloadWait
	at := t0
	for i := 0; i < 8; i++ {
		if got := o.next(at); got != want {
			t.Fatalf("overload close %d: base %v, want %v", i+1, got, want)
		}
		want = min(2*want, overloadCap)
		at = at.Add(5 * time.Second)
	}
	if got := o.next(at.Add(overloadMemory + time.Second)); got != protocol.OverloadWait {
		t.Fatalf("an overload close long after the last: base %v, want %v", got, protocol.OverloadWait)
	}
	for _, base := range []time.Duration{protocol.OverloadWait, overloadCap} {
		for range 1000 {
			if w := overloadJitter(base); w < base/2 || w > base {
				t.Fatalf("wait %v for base %v, want within [%v, %v]", w, base, base/2, base)
			}
		}
	}
}
