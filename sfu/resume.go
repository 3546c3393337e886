package sfu

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
