// Package webhook delivers the server's room events to operators' HTTP
// endpoints: each event is POSTed as JSON, signed with HMAC-SHA256 over its
// timestamp and body, at least once, in order per endpoint, retried with
// exponential backoff, through a bounded queue that never makes a room
// wait. Receivers check deliveries with Verify (sdk.VerifyWebhook).
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	HeaderID        = "Huddle-Webhook-Id"        // the event id: the same on every retry, for de-duplication
	HeaderTimestamp = "Huddle-Webhook-Timestamp" // Unix seconds of this attempt
	HeaderSignature = "Huddle-Webhook-Signature" // "v1=" + hex HMAC-SHA256(secret, timestamp + "." + body)
	HeaderKey       = "Huddle-Webhook-Key"       // the API key whose secret signed it
)

// DefaultWindow is how old (or how far in the future) a delivery's
// timestamp may be for Verify to accept it: a captured delivery replayed
// later fails.
const DefaultWindow = 5 * time.Minute

// ErrInvalid is wrapped by every Verify refusal.
var ErrInvalid = errors.New("invalid webhook")

// Sign returns the signature header value of body sent at ts.
func Sign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery: its signature over the timestamp and body with
// secret, and that the timestamp is within window of now (DefaultWindow
// when window is 0). A tampered body, a wrong secret or an old (replayed)
// delivery is refused. Within the window, a receiver should still drop
// ids it has already handled: delivery is at least once.
func Verify(secret string, h http.Header, body []byte, now time.Time, window time.Duration) error {
	if window <= 0 {
		window = DefaultWindow
	}
	tsText := h.Get(HeaderTimestamp)
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no or bad %s header", ErrInvalid, HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > window || d < -window {
		return fmt.Errorf("%w: timestamp is %v from now, outside the %v window (replayed, or clocks apart)", ErrInvalid, d.Round(time.Second), window)
	}
	want := Sign(secret, ts, body)
	for _, got := range strings.Split(h.Get(HeaderSignature), ",") {
		if hmac.Equal([]byte(strings.TrimSpace(got)), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("%w: signature does not match (wrong secret, or the body was altered)", ErrInvalid)
}
