package signaling

import (
	"errors"
	"fmt"
	"testing"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// TestChatErrorCode: a chat the store could not save because it is away
// or because this node no longer owns the room reaches the sender as the
// retryable unavailable; anything else stays internal. (The end-to-end
// path, a real redis-server killed under a server, is
// sdk.TestDocsSurviveStoreOutage.)
func TestChatErrorCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("store chat of r: %w", collab.ErrUnavailable), protocol.CodeUnavailable},
		{fmt.Errorf("store chat of r: %w: FENCED", collab.ErrFenced), protocol.CodeUnavailable},
		{fmt.Errorf("store chat of r: %w", collab.ErrConflict), protocol.CodeUnavailable},
		{errors.New("store chat of r: decode: bad JSON"), protocol.CodeInternal},
	} {
		code, text := chatErrorCode(c.err)
		if code != c.code || text == "" {
			t.Errorf("chatErrorCode(%v) = %q, %q; want code %q", c.err, code, text, c.code)
		}
	}
}
