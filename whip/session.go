package whip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/auth"
)

// badOffer marks offers the client got wrong (400, not 500).
type badOffer struct{ error }

// session is one WHIP or WHEP client: its PeerConnection and the bot that
// stands for it in the room.
type session struct {
	srv         *Server
	id, token   string
	publish     bool
	remoteUfrag string
	log         *slog.Logger
	pc          *webrtc.PeerConnection
	room        *sdk.Room

	ctx       context.Context
	cancel    context.CancelFunc
	connected chan struct{} // closed when the client's PC first connects
	ready     chan struct{} // closed when the answer is made (WHEP tracks exist)
	done      chan struct{} // closed when torn down

	mu         sync.Mutex
	stopped    bool
	candidates int            // trickled so far, bounded by maxSessionCandidates
	wg         sync.WaitGroup // media goroutines
	layers     map[string]bool
	out        map[string]*egress // WHEP: by kind
}

func (ss *session) etag() string { return `"` + ss.remoteUfrag + `"` }

// end asks the session to stop; run tears it down.
func (ss *session) end() { ss.cancel() }

// start joins the room, answers the offer and starts the session.
func (s *Server) start(reqCtx context.Context, id, tok string, claims *auth.Claims, publish bool, offerSDP string) (*session, string, error) {
	offer := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}
	ufrag, kinds, err := parseOffer(offer)
	if err != nil {
		return nil, "", err
	}
	pc, err := s.cfg.NewPeerConnection()
	if err != nil {
		return nil, "", fmt.Errorf("peer connection: %w", err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	ss := &session{
		srv: s, id: id, token: tok, publish: publish, remoteUfrag: ufrag, pc: pc,
		log: s.log.With("session", id, "identity", claims.Identity, "room", claims.Room, "whip", publish),
		ctx: ctx, cancel: cancel, layers: map[string]bool{}, out: map[string]*egress{},
		connected: make(chan struct{}), ready: make(chan struct{}), done: make(chan struct{}),
	}
	opts := sdk.Options{Logger: ss.log, NoAutoReconnect: true}
	if publish {
		pc.OnTrack(ss.onClientTrack)
	} else {
		opts.OnTrack = ss.onRoomTrack
	}
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { close(ss.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			ss.end()
		}
	})
	fail := func(err error) (*session, string, error) {
		cancel()
		_ = pc.Close()
		if ss.room != nil {
			_ = ss.room.Leave()
		}
		ss.wg.Wait()
		return nil, "", err
	}
	joinCtx, cancelJoin := context.WithTimeout(reqCtx, 15*time.Second)
	defer cancelJoin()
	if ss.room, err = sdk.Join(joinCtx, s.cfg.ServerURL(), tok, opts); err != nil {
		return fail(fmt.Errorf("join room %s: %w", claims.Room, err))
	}
	if !publish {
		if err := ss.addEgress(kinds); err != nil {
			return fail(err)
		}
	}
	if err := pc.SetRemoteDescription(offer); err != nil {
		return fail(badOffer{fmt.Errorf("SDP offer: %w", err)})
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(badOffer{fmt.Errorf("answer the offer: %w", err)})
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("answer: %w", err))
	}
	// WHIP answers carry every server candidate; the SFU's ports are known,
	// so gathering takes no round trips.
	select {
	case <-gathered:
	case <-joinCtx.Done():
		return fail(fmt.Errorf("gather candidates: %w", joinCtx.Err()))
	}
	close(ss.ready)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fail(errors.New("server is shutting down"))
	}
	s.sessions[id] = ss
	s.wg.Add(1)
	s.mu.Unlock()
	go ss.run()
	ss.log.Info("session started")
	return ss, pc.LocalDescription().SDP, nil
}

// parseOffer returns the offer's ICE username fragment and the kinds of
// media it has sections for.
func parseOffer(offer webrtc.SessionDescription) (string, map[string]bool, error) {
	parsed, err := offer.Unmarshal()
	if err != nil {
		return "", nil, badOffer{fmt.Errorf("SDP offer does not parse: %w", err)}
	}
	ufrag, _ := parsed.Attribute("ice-ufrag")
	kinds := map[string]bool{}
	for _, m := range parsed.MediaDescriptions {
		kinds[m.MediaName.Media] = true
		if u, ok := m.Attribute("ice-ufrag"); ok && ufrag == "" {
			ufrag = u
		}
	}
	if !kinds["audio"] && !kinds["video"] {
		return "", nil, badOffer{errors.New("SDP offer has no audio or video section")}
	}
	return ufrag, kinds, nil
}

// run owns the session: it waits for an end (DELETE, the client's PC
// failing or never connecting, the bot's session ending, the node
// stopping) and tears everything down.
func (ss *session) run() {
	defer ss.srv.wg.Done()
	timer := time.NewTimer(ss.srv.cfg.ConnectTimeout)
	defer timer.Stop()
	connected := ss.connected
	for alive := true; alive; {
		select {
		case <-ss.ctx.Done():
			alive = false
		case <-ss.room.Done():
			ss.log.Info("room session ended", "err", ss.room.Err())
			alive = false
		case <-connected:
			timer.Stop()
			connected = nil // a nil channel: never again
		case <-timer.C:
			if connected != nil {
				ss.log.Info("client never connected; ending the session")
				alive = false
			}
		}
	}
	ss.cancel()
	ss.mu.Lock()
	ss.stopped = true
	ss.mu.Unlock()
	_ = ss.pc.Close()
	_ = ss.room.Leave()
	ss.wg.Wait()
	ss.srv.release(ss.id)
	close(ss.done)
	ss.log.Info("session ended")
}

// track registers a media goroutine unless the session is stopping.
func (ss *session) track() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.stopped {
		return false
	}
	ss.wg.Add(1)
	return true
}

// onClientTrack (WHIP) publishes a track the client sends into the room,
// packet for packet, and passes the room's keyframe requests back.
func (ss *session) onClientTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	if !ss.track() {
		return
	}
	defer ss.wg.Done()
	go drainRTCP(receiver)
	ss.mu.Lock()
	dup := remote.RID() != "" && ss.layers[remote.ID()]
	ss.layers[remote.ID()] = true
	ss.mu.Unlock()
	if dup { // simulcast: the first layer to arrive is published
		drain(remote)
		return
	}
	source := "camera"
	if remote.Kind() == webrtc.RTPCodecTypeAudio {
		source = "microphone"
	}
	local, err := ss.room.PublishRTPTrack(remote.Codec().RTPCodecCapability, source)
	if err != nil {
		ss.log.Warn("publish client track", "kind", remote.Kind().String(), "err", err)
		drain(remote)
		return
	}
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		for {
			select {
			case <-ss.ctx.Done():
				return
			case <-local.KeyframeRequests():
				_ = ss.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}})
			}
		}
	}()
	buf := make([]byte, 1600)
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		if _, err := local.Write(buf[:n]); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			ss.log.Debug("forward client packet", "err", err)
		}
	}
}

func drain(t *webrtc.TrackRemote) {
	buf := make([]byte, 1600)
	for {
		if _, _, err := t.Read(buf); err != nil {
			return
		}
	}
}

func drainRTCP(r *webrtc.RTPReceiver) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := r.Read(buf); err != nil {
			return
		}
	}
}
