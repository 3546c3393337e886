package sfu

import (
	"testing"
	"time"
)

// deadlinePoll waits for cond with a generous deadline; it never asserts
// how fast something happens, only that it does.
func deadlinePoll(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	wait := 50 * time.Microsecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		time.Sleep(wait)
		wait = min(2*wait, 5*time.Millisecond)
	}
}
