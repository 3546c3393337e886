package sfu

import (
	"fmt"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// The naive forwarder of Config.Baseline: what a first Pion SFU looks like,
// kept only as the yardstick `huddle bench sfu --baseline` measures the
// real media plane against, through the same signaling and the same bots.
// Each published track is one TrackLocalStaticRTP that every subscriber PC
// adds; its WriteRTP writes to all of them in turn on the forwarder's
// goroutine. Pion's default interceptors (NACK responder and generator,
// reports, stats, TWCC) and one RTCP reader goroutine per RTPSender.

func baselineInterceptors(me *webrtc.MediaEngine) (*interceptor.Registry, error) {
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	return ir, nil
}

func (f *Forwarder) makeBaseline() {
	local, err := webrtc.NewTrackLocalStaticRTP(f.codec, f.info.ID, f.info.PublisherID)
	if err != nil {
		panic(fmt.Sprintf("baseline track: %v", err)) // only fails on a bad codec, which Pion negotiated
	}
	f.local = local
}

func (f *Forwarder) forwardBaseline(raw []byte) {
	if _, err := f.local.Write(raw); err != nil {
		f.log.Debug("baseline write", "err", err)
	}
}

// readBaselineRTCP reads one sender's RTCP (the NACK responder needs it
// read) and passes keyframe requests upstream.
func (p *Peer) readBaselineRTCP(sender *webrtc.RTPSender, f *Forwarder) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, pkt := range pkts {
				switch pkt.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					f.requestKeyframes(kfSubscriber)
				}
			}
		}
	}()
}
