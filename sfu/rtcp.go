package sfu

import (
	"io"
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// maxNACKsPerPacket bounds the retransmissions one RTCP packet can ask for;
// a subscriber cannot make the server resend its whole history at once.
const maxNACKsPerPacket = 128

// streamSink stands in for the buffer of one SRTCP (or SRTP) read stream
// of a subscriber PeerConnection: Pion's session writes each decrypted
// packet for the stream's SSRC into it, and the sink handles it right there,
// on the session's one read goroutine. Nobody reads it: the SFU needs no
// reader goroutine per RTPSender.
type streamSink struct {
	handle func([]byte) // nil: discard
	once   sync.Once
	done   chan struct{}
}

func newStreamSink(handle func([]byte)) *streamSink {
	return &streamSink{handle: handle, done: make(chan struct{})}
}

func (s *streamSink) Write(b []byte) (int, error) {
	if s.handle != nil {
		s.handle(b)
	}
	return len(b), nil
}

// Read blocks until the stream closes: everything went to Write already.
func (s *streamSink) Read([]byte) (int, error) {
	<-s.done
	return 0, io.EOF
}

func (s *streamSink) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// handleRTCP is where all RTCP a subscriber sends about one of its
// downtracks arrives (ssrc is the downtrack's). Keyframe requests go to the
// track's forwarder, which throttles them for all subscribers together;
// NACKs are queued as retransmissions from the track's packet cache.
// Receiver reports and TWCC feedback land here too (the next issue's
// estimator reads them here).
//
// A compound packet naming several SSRCs is delivered once per SSRC, so
// each call handles only the parts about its own.
func (s *sendPath) handleRTCP(ssrc uint32, b []byte) {
	d := s.downTrack(ssrc)
	if d == nil {
		return
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.PictureLossIndication:
			if p.MediaSSRC == ssrc {
				s.plis.Add(1)
				d.requestKeyframe(kfSubscriber)
			}
		case *rtcp.FullIntraRequest:
			for _, e := range p.FIR {
				if e.SSRC == ssrc {
					s.firs.Add(1)
					d.requestKeyframe(kfSubscriber)
					break
				}
			}
		case *rtcp.TransportLayerCC:
			s.est.feedback(p)               // the downlink estimate (estimate.go)
			s.probe.feedback(p, time.Now()) // a probe cluster's arrivals (probe.go)
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			s.est.feedback(p)
		case *rtcp.ReceiverReport:
			d.observeReport(p.Reports) // loss, jitter and RTT to the quality scorer
		case *rtcp.TransportLayerNack:
			if p.MediaSSRC != ssrc || !d.video() {
				continue
			}
			n := 0
			for _, pair := range p.Nacks {
				pair.Range(func(seq uint16) bool {
					if n >= maxNACKsPerPacket {
						return false
					}
					n++
					s.nacks.Add(1)
					s.push(sendItem{d: d, seq: seq, retransmit: true}, false)
					return true
				})
			}
		}
	}
}
