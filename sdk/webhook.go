package sdk

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/webhook"
)

// WebhookEvent is one event a Huddle server POSTs to a webhook endpoint:
// room_started, room_finished, participant_joined, participant_left,
// track_published, track_unpublished, track_muted, document_created,
// document_deleted. ID is the same on every retry of one event.
type WebhookEvent = admin.Event

// VerifyWebhook reads a webhook request and checks that it was signed
// with secret (the API secret of the key in its Huddle-Webhook-Key
// header) and sent within the last five minutes, then decodes it. A
// tampered, forged or replayed delivery returns an error wrapping
// webhook.ErrInvalid; answer it with 401. Delivery is at least once:
// de-duplicate by the event's ID.
//
//	http.HandleFunc("/huddle", func(w http.ResponseWriter, r *http.Request) {
//		ev, err := sdk.VerifyWebhook(r, secret)
//		if err != nil {
//			http.Error(w, err.Error(), http.StatusUnauthorized)
//			return
//		}
//		handle(ev) // a 2xx answer acknowledges it; anything else is retried
//	})
func VerifyWebhook(r *http.Request, secret string) (WebhookEvent, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return WebhookEvent{}, fmt.Errorf("webhook: read body: %w", err)
	}
	if err := webhook.Verify(secret, r.Header, body, time.Now(), 0); err != nil {
		return WebhookEvent{}, err
	}
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return WebhookEvent{}, fmt.Errorf("webhook: decode: %w", err)
	}
	return ev, nil
}
