package sfu

import "time"

// RestartICE makes the next subscriber offer restart ICE, for a client
// that resumed on a new connection (its network may have changed). An
// offer that may have been lost with the old connection is sent again; the
// restart follows its answer. The client restarts ICE on the publisher
// PeerConnection with its own offer.
func (p *Peer) RestartICE() {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.closed || p.sub == nil || p.sub.RemoteDescription() == nil && !p.awaiting {
		return // never negotiated: nothing to restart
	}
	p.iceRestart = true
	if p.awaiting {
		p.renegotiate = true
		if ld := p.sub.LocalDescription(); ld != nil {
			p.sig.SendDescription(TargetSubscriber, *ld)
		}
		return
	}
	p.offerLocked()
}

// answerRetry is how long after a dropped answer the subscriber offer is
// sent again: the signaling rate limit that dropped it has refilled by then
// (50 messages at the default rate).
const answerRetry = time.Second

// AnswerDropped: the client's answer to the outstanding subscriber offer
// never reached the peer (the signaling rate limit dropped it). Every
// later offer waits for that answer, so without one the subscriber would
// get no new track until it resumed. The offer is sent again after
// answerRetry; the client, stable since it answered, answers it anew.
func (p *Peer) AnswerDropped() {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.closed || !p.awaiting || p.sub == nil || p.reoffer != nil {
		return
	}
	p.wg.Add(1) // close stops the timer or waits for its run
	p.reoffer = time.AfterFunc(answerRetry, func() {
		defer p.wg.Done()
		p.negMu.Lock()
		defer p.negMu.Unlock()
		p.reoffer = nil
		if p.closed || !p.awaiting || p.sub == nil {
			return // answered meanwhile, or gone
		}
		if ld := p.sub.LocalDescription(); ld != nil {
			p.sig.SendDescription(TargetSubscriber, *ld)
		}
	})
}
