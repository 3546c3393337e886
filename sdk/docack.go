package sdk

import "time"

// DocAck is the server's acknowledgement of one submit of a document:
// the local edits composed into one op, now durable on the server.
type DocAck struct {
	Rev  int64         // the revision the op made
	Sent time.Time     // when the submit was (last) sent
	RTT  time.Duration // from that send to the acknowledgement's arrival
}

// OnAck sets a function called, one call at a time and in order with
// OnChange's, each time the server acknowledges one of this document's
// submits: for a "saved" indicator, or to measure round trips (huddle
// bench ot --clients). It must not block for long.
func (d *Document) OnAck(fn func(DocAck)) {
	d.cbMu.Lock()
	d.onAck = fn
	d.cbMu.Unlock()
}

// ackedLocked records that the in-flight submit was acknowledged at rev;
// takeAcksLocked hands the records to emitAcks once d.mu is released.
func (d *Document) ackedLocked(rev int64) {
	d.stats.Acked++
	now := time.Now()
	d.acks = append(d.acks, DocAck{Rev: rev, Sent: d.sentAt, RTT: now.Sub(d.sentAt)})
}

func (d *Document) takeAcksLocked() []DocAck {
	a := d.acks
	d.acks = nil
	return a
}

func (d *Document) emitAcks(acks []DocAck) {
	if len(acks) == 0 {
		return
	}
	d.cbMu.Lock()
	defer d.cbMu.Unlock()
	if d.onAck != nil {
		for _, a := range acks {
			d.onAck(a)
		}
	}
}
