package sdk

import "time"

// RetryArmed: a dropped publisher offer waits to be sent again.
func (r *Room) RetryArmed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retry.timer != nil
}

// SetOfferRetryDelay changes the wait before a dropped offer is sent
// again, until restore is called.
func SetOfferRetryDelay(d time.Duration) (restore func()) {
	old := offerRetryDelay
	offerRetryDelay = d
	return func() { offerRetryDelay = old }
}
