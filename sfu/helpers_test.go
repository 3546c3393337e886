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
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
