package sdk

// What happens when the server's message rate limit drops the bot's
// publisher offer (an error with ref "offer" and code rate_limited). The
// server never saw that offer, and nothing was wrong with it: the SDK
// keeps it outstanding (tracks and all) and sends the same description
// again once the limit has had time to refill. Nothing is settled or
// rolled back, so this works for the very first offer too (which has no
// earlier answer to settle with) and Pion keeps the senders as they are.

import (
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// offerRetryDelay: a dropped offer is sent again after this long. The
// server's default rate refills 50 messages in that time. A variable for
// tests only.
var offerRetryDelay = time.Second

// offerRetry is the Room's timer for sending a dropped offer again. Its
// owner is the Room: shutdown stops it and waits for a run under way.
type offerRetry struct {
	timer   *time.Timer // guarded by Room.mu; nil when none is armed
	running sync.WaitGroup
}

// offerDropped arms the retry of the outstanding offer. Called with r.mu.
func (r *Room) offerDropped() {
	if !r.pubAwaiting || r.retry.timer != nil || r.ctx.Err() != nil {
		return // nothing outstanding, or a retry already armed, or closing
	}
	conn := r.conn
	r.retry.running.Add(1)
	r.retry.timer = time.AfterFunc(offerRetryDelay, func() {
		defer r.retry.running.Done()
		r.resendOffer(conn)
	})
	r.log.Info("publisher offer dropped by the server's rate limit; sending it again", "in", offerRetryDelay)
}

// resendOffer sends the outstanding offer again on conn, unless it has
// been answered or the connection replaced (a resume offers anew) since.
func (r *Room) resendOffer(conn *signalConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retry.timer = nil
	if r.ctx.Err() != nil || r.conn != conn || !r.pubAwaiting || r.pub.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return
	}
	// With the candidates gathered since, in case their trickle was
	// dropped as well.
	offer := r.pub.PendingLocalDescription()
	if offer == nil {
		return
	}
	if err := r.sendOffer(conn, offer.SDP); err != nil {
		r.log.Warn("publisher offer", "err", err)
	}
}

// stopRetry stops the retry timer and waits for a run under way. Not
// called with r.mu (a run takes it).
func (r *Room) stopRetry() {
	r.mu.Lock()
	t := r.retry.timer
	r.retry.timer = nil
	r.mu.Unlock()
	if t != nil && t.Stop() {
		r.retry.running.Done() // it will not run
	}
	r.retry.running.Wait()
}
