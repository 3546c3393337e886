package session

import (
	"fmt"
	"strings"
	"testing"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestWireErrorStore: the cluster store's refusals reach the client as
// "unavailable" with a message that says what to do.
func TestWireErrorStore(t *testing.T) {
	for err, want := range map[error]string{
		collab.ErrUnavailable: "retry",
		collab.ErrFenced:      "reconnect",
		collab.ErrConflict:    "reconnect",
	} {
		code, msg := WireError(fmt.Errorf("submit d: commit: %w", err))
		if code != protocol.DocErrUnavailable || !strings.Contains(msg, want) {
			t.Errorf("%v: %s %q", err, code, msg)
		}
	}
}
