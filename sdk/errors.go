package sdk

import "github.com/huddle-rtc/huddle/signaling/protocol"

// joinHint says what to do about a refused join.
func joinHint(code string) string {
	switch code {
	case protocol.CodeBadToken:
		return " (mint a token for this room with this server's API key and secret: `huddle token`, or auth.Mint; a dev-mode server prints its key and gives tokens at /api/dev/token)"
	case protocol.CodeBadVersion:
		return " (this SDK and the server speak different protocol versions: use the SDK of the server's release)"
	}
	return ""
}
