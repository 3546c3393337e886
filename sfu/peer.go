package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// PeerConnection targets, as named in the signaling protocol.
const (
	TargetPublisher  = "publisher"
	TargetSubscriber = "subscriber"
)

// Signaler carries what a Peer must tell its client: the answers to its
// publisher offers, the server's subscriber offers, and ICE candidates.
// Implementations must not block for long; they are called from Pion's
// callbacks and from the room.
type Signaler interface {
	SendDescription(target string, sd webrtc.SessionDescription)
	SendCandidate(target string, c *webrtc.ICECandidateInit)
}

// ErrBadSDP wraps descriptions that do not parse or cannot be applied.
var ErrBadSDP = errors.New("bad sdp")

// ErrBadCandidate wraps ICE candidates that cannot be added.
var ErrBadCandidate = errors.New("bad ice candidate")

// PeerOptions says what a participant may do with media.
type PeerOptions struct {
	ICEServers   []webrtc.ICEServer
	CanPublish   bool
	CanSubscribe bool
	// OnDataChannel receives the data channels the client opens on its
	// publisher PeerConnection (collab and cursors).
	OnDataChannel func(*webrtc.DataChannel)
}

// Peer is one participant's media: the publisher PeerConnection, where the
// client offers, and the subscriber PeerConnection, where the server offers.
// With one offerer per PeerConnection, offers can never cross.
type Peer struct {
	id   string
	room *Room
	sig  Signaler
	opts PeerOptions
	log  *slog.Logger
	ctx  context.Context
	stop context.CancelFunc

	// The PeerConnections are made on first use (pub at the first offer,
	// sub at the first track to send), so that an idle participant costs
	// no Pion goroutines and no send path. pub is guarded by pubMu, sub by
	// negMu.
	pub *webrtc.PeerConnection
	sub *webrtc.PeerConnection

	// pubMu serialises the client's publisher offers.
	pubMu      sync.Mutex
	pubPending []webrtc.ICECandidateInit // candidates that came before the offer
	sources    map[string]string         // client track id -> source, from the last offer

	// reads are the published tracks this peer's goroutines read (RTP, and
	// RTCP per layer); close ends those reads with a deadline (unblockReads).
	readsMu sync.Mutex
	reads   []trackRead

	// negMu guards the subscriber negotiation state.
	negMu       sync.Mutex
	awaiting    bool // an offer is out; the next waits for its answer
	renegotiate bool // something changed while awaiting
	subPending  []webrtc.ICECandidateInit
	downs       map[string]*DownTrack // by track id
	closed      bool
	iceRestart  bool        // the next offer restarts ICE (after a resume)
	reoffer     *time.Timer // sends the offer again after a dropped answer (resume.go)

	subReady atomic.Bool // the subscriber PC is connected

	// path is the subscriber PC's one send path, made and running once the
	// subscriber PC exists (both under negMu); wg holds the goroutines
	// reading this peer's published tracks. close waits for both.
	path        *sendPath
	probeOwner  *DownTrack // the video a probe cluster runs for (allocator.go; its loop only)
	pathRunning bool
	wg          sync.WaitGroup
}

func newPeer(r *Room, id string, sig Signaler, opts PeerOptions) (*Peer, error) {
	ctx, stop := context.WithCancel(context.Background())
	p := &Peer{
		id: id, room: r, sig: sig, opts: opts,
		log:   r.log.With("participant", id),
		ctx:   ctx,
		stop:  stop,
		downs: map[string]*DownTrack{},
	}
	return p, nil
}

// ensurePub makes the publisher PeerConnection; pubMu is held.
func (p *Peer) ensurePub() error {
	if p.pub != nil {
		return nil
	}
	if p.ctx.Err() != nil {
		return fmt.Errorf("publisher pc for %s: peer closed", p.id)
	}
	pc, err := p.room.engine.newPeerConnection(p.opts.ICEServers)
	if err != nil {
		return fmt.Errorf("publisher pc for %s: %w", p.id, err)
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { p.sendCandidate(TargetPublisher, c) })
	pc.OnTrack(p.onTrack)
	if p.opts.OnDataChannel != nil {
		pc.OnDataChannel(p.opts.OnDataChannel)
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.log.Debug("publisher pc", "state", s.String())
	})
	p.pub = pc
	return nil
}

// ensureSub makes the subscriber PeerConnection and starts its send path;
// negMu is held.
func (p *Peer) ensureSub() error {
	if p.sub != nil {
		return nil
	}
	if p.closed {
		return fmt.Errorf("subscriber pc for %s: peer closed", p.id)
	}
	// The send path (its queues are most of a subscriber's memory) is made
	// with the PeerConnection it sends on, so idle participants have none.
	path := newSendPath(p.log)
	path.useGSO(p.room.engine.gso)
	path.workers = p.room.engine.workers
	if !p.room.engine.baseline {
		path.est = newEstimator(p.room.engine.se.LoggerFactory) // estimate.go
		path.probe = newProber(path)                            // probe.go
	}
	pc, err := p.room.engine.newSubscriberPeerConnection(p.opts.ICEServers, path.handleRTCP)
	if err != nil {
		return fmt.Errorf("subscriber pc for %s: %w", p.id, err)
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { p.sendCandidate(TargetSubscriber, c) })
	// The send path gathers GSO bursts for the subscriber's address, which
	// follows ICE's selected pair (an ICE restart may change it).
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(path.setRemote)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		p.log.Debug("subscriber pc", "state", s.String())
		p.subReady.Store(s == webrtc.PeerConnectionStateConnected)
		if s == webrtc.PeerConnectionStateConnected {
			p.negMu.Lock()
			for _, d := range p.downs {
				d.requestKeyframe(kfStart)
			}
			p.negMu.Unlock()
		}
	})
	p.sub, p.path = pc, path
	p.room.engine.metrics.track(p.path)
	p.pathRunning = true
	go p.path.run()
	return nil
}

// ID is the participant id.
func (p *Peer) ID() string { return p.id }

// Publisher is the publisher PeerConnection, where the client's data
// channels arrive; nil until the client's first offer.
func (p *Peer) Publisher() *webrtc.PeerConnection {
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	return p.pub
}

func (p *Peer) sendCandidate(target string, c *webrtc.ICECandidate) {
	if c == nil {
		return // end of gathering; clients do not need it with trickle
	}
	init := c.ToJSON()
	p.sig.SendCandidate(target, &init)
}

// HandleOffer applies the client's publisher offer and sends the answer.
func (p *Peer) HandleOffer(sdp string, sources map[string]string) error {
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	if err := checkSources(sources); err != nil {
		return err
	}
	offer := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}
	parsed, err := offer.Unmarshal()
	if err != nil {
		return fmt.Errorf("%w: publisher offer does not parse: %w", ErrBadSDP, err)
	}
	if n := len(parsed.MediaDescriptions); n > MaxMediaSections {
		return fmt.Errorf("%w: %d media sections in the publisher offer, at most %d", ErrLimit, n, MaxMediaSections)
	}
	// The sources are in place before Pion sees the offer (its tracks may
	// start at once), and put back when it refuses the offer.
	prev := p.sources
	p.sources = keepSources(p.sources, sources, offeredTracks(parsed))
	if err := p.ensurePub(); err != nil {
		p.sources = prev
		return err
	}
	if err := p.pub.SetRemoteDescription(offer); err != nil {
		p.sources = prev
		return fmt.Errorf("%w: publisher offer: %w", ErrBadSDP, err)
	}
	for _, c := range p.pubPending {
		if err := p.pub.AddICECandidate(c); err != nil {
			p.log.Debug("buffered publisher candidate refused", "err", err)
		}
	}
	p.pubPending = nil
	answer, err := p.pub.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("%w: answer publisher offer: %w", ErrBadSDP, err)
	}
	if err := p.pub.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("publisher answer: %w", err)
	}
	p.sig.SendDescription(TargetPublisher, *p.pub.LocalDescription())
	return nil
}

// HandleAnswer applies the client's answer to the server's subscriber offer
// and sends the next offer if something changed meanwhile.
func (p *Peer) HandleAnswer(sdp string) error {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if !p.awaiting || p.sub == nil {
		return fmt.Errorf("%w: subscriber answer with no offer outstanding", ErrBadSDP)
	}
	answer := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}
	if _, err := answer.Unmarshal(); err != nil {
		return fmt.Errorf("%w: subscriber answer does not parse: %w", ErrBadSDP, err)
	}
	if err := p.sub.SetRemoteDescription(answer); err != nil {
		return fmt.Errorf("%w: subscriber answer: %w", ErrBadSDP, err)
	}
	p.awaiting = false
	for _, c := range p.subPending {
		if err := p.sub.AddICECandidate(c); err != nil {
			p.log.Debug("buffered subscriber candidate refused", "err", err)
		}
	}
	p.subPending = nil
	if p.renegotiate {
		p.renegotiate = false
		p.offerLocked()
	}
	return nil
}

// HandleCandidate adds a client's trickled candidate to one of the
// PeerConnections, holding it until that PeerConnection has a remote
// description. A nil candidate (end of candidates) is ignored.
func (p *Peer) HandleCandidate(target string, c *webrtc.ICECandidateInit) error {
	if c == nil {
		return nil
	}
	switch target {
	case TargetPublisher:
		p.pubMu.Lock()
		defer p.pubMu.Unlock()
		if p.pub == nil || p.pub.RemoteDescription() == nil {
			if len(p.pubPending) >= MaxPendingCandidates {
				return fmt.Errorf("%w: %d publisher candidates before the offer", ErrLimit, MaxPendingCandidates)
			}
			p.pubPending = append(p.pubPending, *c)
			return nil
		}
		if err := p.pub.AddICECandidate(*c); err != nil {
			return fmt.Errorf("%w: %w", ErrBadCandidate, err)
		}
	case TargetSubscriber:
		p.negMu.Lock()
		defer p.negMu.Unlock()
		if p.sub == nil || p.sub.RemoteDescription() == nil || p.awaiting {
			if len(p.subPending) >= MaxPendingCandidates {
				return fmt.Errorf("%w: %d subscriber candidates before the answer", ErrLimit, MaxPendingCandidates)
			}
			p.subPending = append(p.subPending, *c)
			return nil
		}
		if err := p.sub.AddICECandidate(*c); err != nil {
			return fmt.Errorf("%w: %w", ErrBadCandidate, err)
		}
	default:
		return fmt.Errorf("%w: unknown target %q", ErrBadCandidate, target)
	}
	return nil
}

// negotiate sends a subscriber offer now, or right after the answer to the
// outstanding one.
func (p *Peer) negotiate() {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.awaiting {
		p.renegotiate = true
		return
	}
	p.offerLocked()
}

func (p *Peer) offerLocked() {
	if p.closed || p.sub == nil {
		return
	}
	offer, err := p.sub.CreateOffer(&webrtc.OfferOptions{ICERestart: p.iceRestart})
	p.iceRestart = false
	if err == nil {
		err = p.sub.SetLocalDescription(offer)
	}
	if err != nil {
		// A client that leaves closes its DTLS first, and Pion then closes
		// the PeerConnection by itself, before the room removes the peer:
		// a track ending meanwhile (another participant leaving too) asks
		// for an offer on a closed connection. That is teardown, not a
		// fault.
		level := slog.LevelWarn
		if errors.Is(err, webrtc.ErrConnectionClosed) {
			level = slog.LevelDebug
		}
		p.log.Log(context.Background(), level, "subscriber offer", "err", err)
		return
	}
	p.awaiting = true
	p.sig.SendDescription(TargetSubscriber, *p.sub.LocalDescription())
}

// onTrack starts forwarding a track the client published.
func (p *Peer) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	p.readsMu.Lock()
	p.reads = append(p.reads, trackRead{remote, receiver})
	p.readsMu.Unlock()
	if !p.opts.CanPublish {
		p.log.Warn("refusing track: no publish grant", "kind", remote.Kind().String())
		p.goDrain(remote)
		return
	}
	p.pubMu.Lock()
	source := p.sources[remote.ID()]
	p.pubMu.Unlock()
	if source == "" {
		source = map[webrtc.RTPCodecType]string{webrtc.RTPCodecTypeAudio: "microphone", webrtc.RTPCodecTypeVideo: "camera"}[remote.Kind()]
	}
	info := TrackInfo{
		ID:          "TR_" + randomID(),
		PublisherID: p.id,
		Kind:        remote.Kind().String(),
		Source:      source,
		Codec:       remote.Codec().MimeType,
		ClientID:    remote.ID(),
	}
	f := newForwarder(info, remote, receiver, func(ssrc uint32) error {
		return p.pub.WriteRTCP(pliPacket(ssrc))
	}, p.log)
	f.room = p.room
	if remote.RID() != "" && p.room.addLayer(p, f, remote) {
		return // another simulcast layer of a track already forwarded (simulcast.go)
	}
	if p.room.engine.baseline {
		f.makeBaseline()
	}
	f.meter = p.room.newTrackMeter(p.id, remote, receiver) // speaker and quality (quality.go)
	p.room.publish(p, f)
}

// goDrain reads a track nobody forwards, on a goroutine close waits for.
func (p *Peer) goDrain(t *webrtc.TrackRemote) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		drainTrack(t)
	}()
}

func drainTrack(t *webrtc.TrackRemote) {
	buf := make([]byte, 1600)
	for {
		if _, _, err := t.Read(buf); err != nil {
			return
		}
	}
}

// subscribe adds downtracks for the given tracks and negotiates once.
func (p *Peer) subscribe(fs []*Forwarder) {
	if !p.opts.CanSubscribe || len(fs) == 0 {
		return
	}
	added := 0
	p.negMu.Lock()
	if err := p.ensureSub(); err != nil {
		p.negMu.Unlock()
		p.log.Warn("subscribe", "err", err)
		return
	}
	for _, f := range fs {
		if p.closed || p.downs[f.info.ID] != nil {
			continue
		}
		d := newDownTrack(f, p.path, &p.subReady)
		var local webrtc.TrackLocal = d
		if f.local != nil {
			local = f.local // Config.Baseline
		}
		sender, err := p.sub.AddTrack(local)
		if err != nil {
			p.log.Warn("subscribe", "track", f.info.ID, "err", err)
			continue
		}
		d.sender = sender
		d.subscriber = p.id
		d.quality = p.room.quality.scorer(p.id) // receiver reports to the quality scorer
		if f.local != nil {
			p.readBaselineRTCP(sender, f)
		} else {
			f.addDownTrack(d)
		}
		p.downs[f.info.ID] = d
		added++
	}
	p.negMu.Unlock()
	if added > 0 {
		p.negotiate()
	}
}

// unsubscribe removes the downtrack of an ended track.
func (p *Peer) unsubscribe(trackID string) {
	p.negMu.Lock()
	d := p.downs[trackID]
	delete(p.downs, trackID)
	closed := p.closed
	p.negMu.Unlock()
	if d == nil {
		return
	}
	d.close()
	if closed {
		return
	}
	if err := p.sub.RemoveTrack(d.sender); err != nil {
		p.log.Debug("remove track", "track", trackID, "err", err)
		return
	}
	p.negotiate()
}

// close ends both PeerConnections; the room has already forgotten the peer.
func (p *Peer) close() {
	p.negMu.Lock()
	p.closed = true
	if p.reoffer != nil && p.reoffer.Stop() {
		p.wg.Done() // it will not run
	}
	p.reoffer = nil
	downs := p.downs
	p.downs = map[string]*DownTrack{}
	sub, pathRunning := p.sub, p.pathRunning
	p.negMu.Unlock()
	for _, d := range downs {
		d.close()
	}
	p.stop()
	p.pubMu.Lock()
	pub := p.pub
	p.pubMu.Unlock()
	if pub != nil {
		if err := pub.Close(); err != nil {
			p.log.Debug("close publisher pc", "err", err)
		}
	}
	if sub != nil {
		if err := sub.Close(); err != nil {
			p.log.Debug("close subscriber pc", "err", err)
		}
	}
	p.unblockReads()
	if pathRunning {
		p.path.probe.close() // its pacing pushes onto the path
		p.path.close()
		p.path.est.close()
		p.room.engine.metrics.retire(p.path)
	}
	p.wg.Wait() // the forwarders of this peer's tracks end with its PC
}

// trackRead is one published track as its readers see it.
type trackRead struct {
	remote   *webrtc.TrackRemote
	receiver *webrtc.RTPReceiver
}

// unblockReads sets a read deadline in the past on every published track
// and its RTCP, after the publisher PC is closed. Closing the PC should end
// those reads, and nearly always does; but a server under load once kept
// forwarder and drain goroutines waiting inside pion/srtp (v3.1.3,
// ReadStreamSRTP.NextStream) for half an hour after their PC closed, and
// close, which waits for them, never returned: the participant's leave and
// the server's shutdown hung with it. A deadline wakes that wait whatever
// state the stream was left in.
func (p *Peer) unblockReads() {
	p.readsMu.Lock()
	reads := p.reads
	p.reads = nil
	p.readsMu.Unlock()
	past := time.Unix(1, 0)
	for _, r := range reads {
		if err := r.remote.SetReadDeadline(past); err != nil {
			p.log.Debug("track read deadline", "err", err)
		}
		var err error
		if rid := r.remote.RID(); rid != "" {
			err = r.receiver.SetReadDeadlineSimulcast(past, rid)
		} else {
			err = r.receiver.SetReadDeadline(past)
		}
		if err != nil {
			p.log.Debug("rtcp read deadline", "err", err)
		}
	}
}
