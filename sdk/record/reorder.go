package record

import "github.com/pion/rtp"

// reorder puts a track's packets back in sequence order before they reach
// the file writers, which assume order: NACK-repaired packets arrive late.
// It holds at most limit packets; past that it gives up on the oldest gap.
type reorder struct {
	limit   int
	next    uint16
	started bool
	held    map[uint16]*rtp.Packet
}

func newReorder(limit int) *reorder {
	return &reorder{limit: limit, held: make(map[uint16]*rtp.Packet, limit)}
}

// push takes one packet and passes on every packet now in order.
func (o *reorder) push(p *rtp.Packet, out func(*rtp.Packet) error) error {
	if !o.started {
		o.started, o.next = true, p.SequenceNumber
	}
	if int16(p.SequenceNumber-o.next) < 0 {
		return nil // a duplicate, or later than a gap we gave up on
	}
	o.held[p.SequenceNumber] = p
	if err := o.drain(out); err != nil {
		return err
	}
	if len(o.held) > o.limit {
		o.skipGap()
		return o.drain(out)
	}
	return nil
}

// flush passes on everything held, in order, skipping the gaps.
func (o *reorder) flush(out func(*rtp.Packet) error) error {
	for len(o.held) > 0 {
		o.skipGap()
		if err := o.drain(out); err != nil {
			return err
		}
	}
	return nil
}

func (o *reorder) drain(out func(*rtp.Packet) error) error {
	for {
		p, ok := o.held[o.next]
		if !ok {
			return nil
		}
		delete(o.held, o.next)
		o.next++
		if err := out(p); err != nil {
			return err
		}
	}
}

// skipGap moves next to the oldest held packet.
func (o *reorder) skipGap() {
	first, found := uint16(0), false
	for seq := range o.held {
		if !found || int16(seq-first) < 0 {
			first, found = seq, true
		}
	}
	if found {
		o.next = first
	}
}
