// Package sdk lets Go programs (bots: recorders, players, note-takers, load
// generators) join Huddle calls. It speaks only the public protocol of
// signaling/protocol over WebSocket and WebRTC, like the browser page does.
//
//	room, err := sdk.Join(ctx, "http://localhost:7880", token, sdk.Options{
//		OnTrack: func(t *sdk.RemoteTrack) { /* read t.Track */ },
//	})
//	video, err := room.PublishTrack(sdk.VP8, "camera")
//	video.WriteSample(media.Sample{Data: frame, Duration: time.Second / 30})
//	room.Leave()
//
// Shared documents travel over the room's data channels (see Docs):
//
//	info, err := room.Docs().Create(ctx, "notes", "")
//	doc, err := room.Docs().Open(ctx, info.ID)
//	doc.OnChange(func(c sdk.Change) { /* remote edit or cursor */ })
//	doc.Insert(0, "héllo 👋") // positions count code points
//	err = doc.WaitSynced(ctx)  // acknowledged (durable) by the server
//
// If the signaling connection drops, the room reconnects by itself (see
// Reconnect): documents are re-opened from their last revision and
// unacknowledged edits resubmitted, never applied twice.
package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Options tune a bot's session. Every field is optional.
type Options struct {
	Logger *slog.Logger
	// OnTrack is called, on its own goroutine, for every remote track. The
	// callee must read the track until it ends (Read returns an error), or
	// its packets pile up.
	OnTrack             func(*RemoteTrack)
	OnParticipantJoined func(protocol.Participant)
	OnParticipantLeft   func(protocol.Participant)
	// OnError receives error messages the server sends after the join.
	// When one refuses the publisher offer (Ref "offer"), the SDK has
	// already taken out the tracks that offer added (their Err says why)
	// and can publish again; unless the code is rate_limited: then the
	// offer was only dropped, and the SDK sends it again by itself.
	OnError func(*protocol.Error)
	// RelayOnly forces all media through TURN relays.
	RelayOnly bool
	// ICENetworkTypes, when set, are the only candidate networks the bot
	// gathers and connects over (e.g. only TCP, to test ICE-TCP);
	// NoServerICEServers ignores the STUN/TURN servers the server hands
	// out. Both are for diagnostics (`huddle doctor`).
	ICENetworkTypes    []webrtc.NetworkType
	NoServerICEServers bool
	// ExtraICEServers are used besides the ones the server hands out.
	ExtraICEServers []webrtc.ICEServer
	// NetworkInterceptors sit closest to the network, beneath NACK and RTCP
	// reports: a load generator can use one to simulate loss, and NACK
	// still repairs what it drops.
	NetworkInterceptors []interceptor.Factory
	// Settings, when set, adjusts the Pion setting engine of the bot's
	// PeerConnections after the SDK's own settings: e.g. a BufferFactory
	// that timestamps packets where SRTP hands them over (`huddle bench`).
	Settings func(*webrtc.SettingEngine)
	// NoAutoReconnect ends the session when the signaling connection
	// drops, instead of calling Reconnect.
	NoAutoReconnect bool
	// ReconnectTimeout bounds the automatic reconnect attempts after a
	// drop [30s]; when they all fail the session ends.
	ReconnectTimeout time.Duration
	// ServerTimeout: a signaling connection on which nothing arrives from
	// the server, not even its pings (every protocol.PingInterval), for
	// this long is taken for dead and the room reconnects (resuming)
	// [DefaultServerTimeout, 15s].
	ServerTimeout time.Duration
	// OnReconnect is called after every successful (automatic or explicit)
	// reconnect, with the participant as the room sees it: the same id
	// after a resume, a new one after a clean rejoin.
	OnReconnect func(self protocol.Participant)
	// OnReconnecting is called when the connection drops and the room
	// starts reconnecting by itself (then OnReconnect, or the end).
	OnReconnecting func(cause error)
	// OnChat is called once per chat message (de-duplicated by id),
	// history included, in order.
	OnChat func(protocol.ChatMessage)
	// OnPresence is called when someone's presence changes.
	OnPresence func(participantID string, p protocol.Presence)
	// OnTyping is called when someone starts or stops typing; a start
	// lasts expiresIn unless renewed.
	OnTyping func(participantID string, typing bool, expiresIn time.Duration)
}

// RemoteTrack is another participant's track arriving at this bot.
type RemoteTrack struct {
	Participant protocol.Participant
	Info        protocol.Track
	Track       *webrtc.TrackRemote
	Receiver    *webrtc.RTPReceiver
	pc          *webrtc.PeerConnection // the subscriber PC, for RequestKeyframe
}

// Room is a bot's session in one room.
type Room struct {
	opts  Options
	log   *slog.Logger
	url   *url.URL
	token string
	api   *webrtc.API
	docs  *Docs

	reconnMu sync.Mutex      // one Reconnect at a time
	overload overloadBackoff // waits after CloseOverloaded (reconnect.go)

	mu           sync.Mutex // guards everything below
	conn         *signalConn
	gen          uint64        // connection generation, bumped by Reconnect
	loopDone     chan struct{} // closed when the current read loop has ended
	replaced     bool          // the server ended this session on purpose
	self         protocol.Participant
	grants       protocol.Grants
	pub, sub     *webrtc.PeerConnection
	tracks       []published
	participants map[string]protocol.Participant
	pubAwaiting  bool // a publisher offer is out
	pubAgain     bool // renegotiate when its answer arrives
	pubRestart   bool // the next publisher offer restarts ICE (after a resume)
	sources      map[string]string
	subPending   []webrtc.ICECandidateInit
	pubPending   []webrtc.ICECandidateInit

	// Tracks added since the last publisher offer, and those the
	// outstanding offer carries for the first time (refusal.go).
	pubNew, pubOut []offered
	pubOutRestart  bool // the outstanding offer restarts ICE

	retry offerRetry // sends an offer the rate limit dropped again (offerretry.go)

	collab, cursors *webrtc.DataChannel
	meet            meeting  // mute, hands, speakers, quality (meeting.go)
	adapt           adaptive // paused videos (adaptive.go)

	// Resume state: the server's session id and the last room event seen.
	sessionID string
	lastSeq   uint64
	chat      chatState
	errw      errorWatchers

	ctx    context.Context
	cancel context.CancelCauseFunc
}

// Join connects to a server, joins the room the token names and starts
// negotiating media. It returns once the server has accepted the join.
func Join(ctx context.Context, serverURL, token string, opts Options) (*Room, error) {
	u, err := wsURL(serverURL)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	conn, joined, err := dialJoin(ctx, u, &protocol.Join{Version: protocol.Version, Token: token})
	if err != nil {
		return nil, err
	}
	levels := newAudioLevels()
	api, err := newAPI(isLoopbackHost(u), opts.NetworkInterceptors, levels, opts.ICENetworkTypes, opts.Settings)
	if err != nil {
		conn.close()
		return nil, err
	}
	rctx, cancel := context.WithCancelCause(context.Background())
	r := &Room{
		opts: opts, log: log.With("participant", joined.Participant.ID), url: u, token: token, conn: conn, api: api,
		self: joined.Participant, grants: joined.Grants,
		participants: map[string]protocol.Participant{},
		sources:      map[string]string{},
		loopDone:     make(chan struct{}),
		ctx:          rctx, cancel: cancel,
		meet: meeting{levels: levels},
	}
	r.docs = newDocs(r, r.log)
	r.chat.init()
	r.resetFrom(joined)
	if err := r.setupPeerConnections(conn, joined.ICEServers); err != nil {
		r.shutdown(err)
		return nil, err
	}
	go r.readLoop(conn, 0, r.loopDone)
	r.negotiate()
	return r, nil
}

func newAPI(loopback bool, network []interceptor.Factory, levels *audioLevels, networkTypes []webrtc.NetworkType, settings func(*webrtc.SettingEngine)) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	// Registered first, so they wrap the writer innermost (nearest the wire).
	for _, f := range network {
		ir.Add(f)
	}
	if err := registerInterceptors(me, ir); err != nil { // arrival.go
		return nil, fmt.Errorf("interceptors: %w", err)
	}
	if err := registerAudioLevel(me, ir, levels); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetRelayAcceptanceMinWait(0)
	if len(networkTypes) > 0 {
		se.SetNetworkTypes(networkTypes)
	}
	if loopback {
		// A server on loopback is reachable only from loopback: gather
		// nothing else, so that no packet leaves the machine.
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if settings != nil {
		settings(&se)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

func (r *Room) setupPeerConnections(conn *signalConn, servers []protocol.ICEServer) error {
	cfg := webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle}
	if r.opts.NoServerICEServers {
		servers = nil
	}
	for _, s := range servers {
		cfg.ICEServers = append(cfg.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	cfg.ICEServers = append(cfg.ICEServers, r.opts.ExtraICEServers...)
	if r.opts.RelayOnly {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pub, err := r.api.NewPeerConnection(cfg)
	if err != nil {
		return fmt.Errorf("publisher pc: %w", err)
	}
	sub, err := r.api.NewPeerConnection(cfg)
	if err != nil {
		_ = pub.Close()
		return fmt.Errorf("subscriber pc: %w", err)
	}
	r.mu.Lock()
	gen := r.gen
	r.mu.Unlock()
	pub.OnICECandidate(func(c *webrtc.ICECandidate) { r.sendCandidate(protocol.TargetPublisher, c) })
	// The data channels die with the publisher PC: a failed one (ICE gave
	// up while the WebSocket lives on) is a drop too.
	pub.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st != webrtc.PeerConnectionStateFailed || r.ctx.Err() != nil || r.opts.NoAutoReconnect {
			return
		}
		r.mu.Lock()
		current := gen == r.gen
		r.mu.Unlock()
		if current {
			r.log.Info("publisher connection failed; reconnecting")
			cause := errors.New("publisher connection failed")
			if r.opts.OnReconnecting != nil {
				r.opts.OnReconnecting(cause)
			}
			go r.autoReconnect(cause, gen)
		}
	})
	sub.OnICECandidate(func(c *webrtc.ICECandidate) { r.sendCandidate(protocol.TargetSubscriber, c) })
	sub.OnTrack(r.onTrack)
	// The data channels always exist, so the publisher PC always has
	// something to negotiate, even for a bot that publishes no media.
	ordered := true
	collab, err := pub.CreateDataChannel(protocol.ChannelCollab, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		_, _ = pub.Close(), sub.Close()
		return fmt.Errorf("collab channel: %w", err)
	}
	unordered, zero := false, uint16(0)
	cursors, err := pub.CreateDataChannel(protocol.ChannelCursors, &webrtc.DataChannelInit{Ordered: &unordered, MaxRetransmits: &zero})
	if err != nil {
		_, _ = pub.Close(), sub.Close()
		return fmt.Errorf("cursors channel: %w", err)
	}
	r.bindDocs(collab, cursors)
	r.mu.Lock()
	r.pub, r.sub, r.collab, r.cursors = pub, sub, collab, cursors
	r.mu.Unlock()
	return nil
}

// bindDocs connects the documents to a new pair of data channels.
func (r *Room) bindDocs(collab, cursors *webrtc.DataChannel) {
	gen := r.docs.generation()
	var cl, cu *dcLink
	bad := func(err error) { r.log.Warn("documents: bad frame from server", "err", err) }
	cu = newDCLink(cursors, func() {}, func(m []byte) { r.docs.onCursors(gen, m) }, bad, func() {})
	cl = newDCLink(collab, func() { r.docs.linkUp(gen, cl, cu) }, func(m []byte) { r.docs.onCollab(gen, m) }, bad,
		func() { r.docs.cutOff(gen) })
}

func (r *Room) readLoop(conn *signalConn, gen uint64, done chan struct{}) {
	defer close(done)
	conn.watchSilence(r.opts.ServerTimeout)
	for {
		m, seq, err := conn.read()
		if err != nil {
			r.mu.Lock()
			current, replaced := gen == r.gen, r.replaced
			r.mu.Unlock()
			if r.ctx.Err() != nil || !current {
				return // ended on purpose, or replaced by Reconnect
			}
			err = fmt.Errorf("signaling connection: %w", err)
			if r.opts.NoAutoReconnect || replaced || finalClose(err) {
				r.shutdown(err)
				return
			}
			r.log.Info("signaling connection dropped; reconnecting", "err", err)
			if r.opts.OnReconnecting != nil {
				r.opts.OnReconnecting(err)
			}
			go r.autoReconnect(err, gen)
			return
		}
		r.handle(m)
		if seq > 0 {
			r.mu.Lock()
			r.lastSeq = seq
			r.mu.Unlock()
		}
	}
}

func (r *Room) handle(m any) {
	switch m := m.(type) {
	case *protocol.Answer:
		r.handlePublisherAnswer(m)
	case *protocol.Offer:
		r.handleSubscriberOffer(m)
	case *protocol.Candidate:
		r.handleCandidate(m)
	case *protocol.ParticipantJoined:
		r.mu.Lock()
		r.participants[m.Participant.ID] = m.Participant
		r.mu.Unlock()
		if r.opts.OnParticipantJoined != nil {
			r.opts.OnParticipantJoined(m.Participant)
		}
	case *protocol.ParticipantLeft:
		r.mu.Lock()
		p, ok := r.participants[m.ParticipantID]
		delete(r.participants, m.ParticipantID)
		r.mu.Unlock()
		if ok && r.opts.OnParticipantLeft != nil {
			r.opts.OnParticipantLeft(p)
		}
	case *protocol.TrackPublished:
		r.mu.Lock()
		if p, ok := r.participants[m.ParticipantID]; ok {
			p.Tracks = append(p.Tracks, m.Track)
			r.participants[m.ParticipantID] = p
		}
		r.mu.Unlock()
	case *protocol.TrackUnpublished:
		r.mu.Lock()
		if p, ok := r.participants[m.ParticipantID]; ok {
			kept := p.Tracks[:0:0]
			for _, t := range p.Tracks {
				if t.ID != m.TrackID {
					kept = append(kept, t)
				}
			}
			p.Tracks = kept
			r.participants[m.ParticipantID] = p
		}
		r.mu.Unlock()
	case *protocol.ChatMessage:
		r.chat.deliver(r, *m)
	case *protocol.PresenceChanged:
		r.mu.Lock()
		if p, ok := r.participants[m.ParticipantID]; ok {
			p.Presence = m.Presence
			r.participants[m.ParticipantID] = p
		}
		r.mu.Unlock()
		if r.opts.OnPresence != nil {
			r.opts.OnPresence(m.ParticipantID, m.Presence)
		}
	case *protocol.Typing:
		if r.opts.OnTyping != nil {
			r.opts.OnTyping(m.ParticipantID, m.Typing, time.Duration(m.ExpiresIn)*time.Millisecond)
		}
	case *protocol.Error:
		if m.Code == protocol.CodeReplaced {
			r.mu.Lock()
			r.replaced = true
			r.mu.Unlock()
		}
		r.log.Warn("server error", "code", m.Code, "message", m.Message, "ref", m.Ref)
		if m.Ref == protocol.TypeOffer {
			r.offerRefused(m) // before OnError, so that its callee can publish again
		}
		r.notifyError(m)
		if r.opts.OnError != nil {
			r.opts.OnError(m)
		}
	default:
		if !r.handleMeeting(m) && !r.handleAdaptive(m) {
			r.log.Debug("ignoring message", "type", protocol.TypeOf(m))
		}
	}
}

func (r *Room) onTrack(t *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	go func() { // keep RTCP flowing through the interceptors
		buf := make([]byte, 1500)
		for {
			if _, _, err := recv.Read(buf); err != nil {
				return
			}
		}
	}()
	r.mu.Lock()
	p, sub := r.participants[t.StreamID()], r.sub
	r.mu.Unlock()
	info := protocol.Track{ID: t.ID(), Kind: t.Kind().String(), Codec: t.Codec().MimeType}
	for _, pt := range p.Tracks {
		if pt.ID == t.ID() {
			info = pt
		}
	}
	if p.ID == "" {
		p.ID = t.StreamID()
	}
	rt := &RemoteTrack{Participant: p, Info: info, Track: t, Receiver: recv, pc: sub}
	if r.opts.OnTrack != nil {
		r.opts.OnTrack(rt)
		return
	}
	buf := make([]byte, 1600)
	for {
		if _, _, err := t.Read(buf); err != nil {
			return
		}
	}
}

var errLeft = errors.New("left the room")

// Leave ends the session on purpose.
// leaveWait bounds how long Leave waits for the server to close after
// the leave message.
const leaveWait = 2 * time.Second

func (r *Room) Leave() error {
	r.mu.Lock()
	conn := r.conn
	r.mu.Unlock()
	alive := r.ctx.Err() == nil
	r.cancel(errLeft) // first, so that the server's close is not taken for a drop
	if alive && conn.send(&protocol.Leave{}) == nil {
		// The server answers leave by closing. Closing first could reset
		// the connection with the leave still unread, and the server would
		// take it for a drop and hold our place for the resume grace.
		r.mu.Lock()
		done := r.loopDone
		r.mu.Unlock()
		select {
		case <-done:
		case <-time.After(leaveWait):
		}
	}
	r.shutdown(errLeft)
	r.reconnMu.Lock() // a reconnect under way finishes (and sees the end)
	r.mu.Lock()
	done := r.loopDone
	r.mu.Unlock()
	r.reconnMu.Unlock()
	<-done
	return nil
}

func (r *Room) shutdown(cause error) {
	r.cancel(cause)
	r.mu.Lock()
	conn, pub, sub := r.conn, r.pub, r.sub
	r.mu.Unlock()
	_ = conn.close()
	r.stopRetry()
	if pub != nil {
		_ = pub.Close()
	}
	if sub != nil {
		_ = sub.Close()
	}
	r.docs.linkDown(r.docs.generation())
	r.docs.beats.Wait()
}
