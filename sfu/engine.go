// Package sfu is Huddle's media plane: it receives each participant's tracks
// on their publisher PeerConnection and forwards them, rewritten per
// subscriber, on every other participant's subscriber PeerConnection.
//
// The pieces, from the network inwards:
//   - Engine: one Pion API shared by every PeerConnection, with the single
//     UDP port (ICE UDP mux), the ICE-TCP fallback and the interceptors.
//   - Room: the media router of one room; it wires published tracks to
//     subscribers.
//   - Peer: one participant's two PeerConnections and their negotiation.
//   - Forwarder: one published track; reads RTP into its packet cache (the
//     one retransmission history of the track) and fans it out.
//   - sendPath: one per subscriber PeerConnection; a bounded queue, and the
//     batches that rewrite and write everything that subscriber gets, run by
//     the engine's send workers (a goroutine per CPU) over UDP, or by the
//     path's own goroutine over TCP.
//   - DownTrack: one subscriber's copy of one track: only its SSRC, sequence
//     and timestamp rewriting state; it has no goroutine.
package sfu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Config says where media listens and how it is advertised.
type Config struct {
	// UDPAddr is the single UDP port all media shares (ICE UDP mux), e.g. ":7882".
	UDPAddr string
	// TCPAddr is the ICE-TCP fallback listener, e.g. ":7882". Empty disables it.
	TCPAddr string
	// PublicIPs, when set, replace the host addresses in the server's ICE
	// candidates (a server behind 1:1 NAT).
	PublicIPs []string
	// Interfaces, when set, are the only network interfaces whose
	// addresses the server offers in its candidates (e.g. ["eth0"]).
	Interfaces []string
	Logger     *slog.Logger
	// Baseline replaces the media plane with a naive Pion forwarder (one
	// TrackLocalStaticRTP per track, Pion's default interceptors), the
	// yardstick `huddle bench sfu --baseline` measures against. Never for
	// production: no keyframe gating, no isolation of slow subscribers.
	Baseline bool
	// NoGSO sends one packet per system call even where the kernel has
	// UDP GSO; for measuring what GSO saves.
	NoGSO bool
	// Registerer, when set, gets the media plane's metrics (packets sent,
	// dropped, resent; GSO sends); Close unregisters them.
	Registerer prometheus.Registerer
}

// Engine holds what every PeerConnection of the server shares.
type Engine struct {
	api      *webrtc.API // publisher PeerConnections
	media    *webrtc.MediaEngine
	icpt     *interceptor.Registry
	se       webrtc.SettingEngine // subscriber PCs each get a copy with their own RTCP sink
	udp      net.PacketConn
	tcp      net.Listener
	log      *slog.Logger
	closer   []func() error
	baseline bool
	gso      *gsoConn     // nil when the socket is not a *net.UDPConn
	workers  *sendWorkers // nil for the baseline (sendworkers.go)
	metrics  *engineMetrics

	// What the candidates advertise (advertise.go).
	udpMux    *ice.UDPMuxDefault
	publicIPs []string
	loopback  bool
}

// NewEngine opens the media ports and builds the Pion API. It is long
// because it is one ordered build (sockets, setting engine, muxes, media
// engine, interceptors, API) with one way out on an error, read best top to
// bottom.
func NewEngine(cfg Config) (*Engine, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	e := &Engine{log: log, baseline: cfg.Baseline, publicIPs: cfg.PublicIPs}
	e.metrics = newEngineMetrics(e)

	udp, err := net.ListenPacket("udp", cfg.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("media udp listen %s: %w", cfg.UDPAddr, err)
	}
	e.udp = udp
	e.closer = append(e.closer, udp.Close)
	if !cfg.Baseline {
		e.workers = newSendWorkers(0)
		e.closer = append(e.closer, func() error { e.workers.close(); return nil })
	}

	se := webrtc.SettingEngine{}
	se.LoggerFactory = pionLoggerFactory{log: log}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetReceiveMTU(1600)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	muxConn := udp
	if uc, ok := udp.(*net.UDPConn); ok {
		e.gso = newGSOConn(uc, cfg.NoGSO || cfg.Baseline, log)
		if !cfg.Baseline { // the baseline has no delay histograms to feed
			e.gso.rx = newRXReader(uc)
		}
		muxConn = e.gso
	}
	udpMux, err := newUDPMux(se.LoggerFactory.NewLogger("udpmux"), muxConn, cfg.Interfaces)
	if err != nil {
		e.Close()
		return nil, err
	}
	e.udpMux = udpMux
	e.closer = append(e.closer, udpMux.Close)
	se.SetICEUDPMux(udpMux)
	if len(cfg.Interfaces) > 0 { // the TCP candidates; the UDP mux filters its own
		se.SetInterfaceFilter(func(name string) bool { return slices.Contains(cfg.Interfaces, name) })
	}

	if cfg.TCPAddr != "" {
		tcp, err := net.Listen("tcp", cfg.TCPAddr)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("media tcp listen %s: %w", cfg.TCPAddr, err)
		}
		e.tcp = tcp
		tcpMux := webrtc.NewICETCPMux(se.LoggerFactory.NewLogger("tcpmux"), tcp, 8)
		e.closer = append(e.closer, tcpMux.Close, tcp.Close)
		se.SetICETCPMux(tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)

	// A server bound to loopback (tests, or a proxy in front) must offer its
	// loopback address, which Pion leaves out by default.
	if ap, err := netip.ParseAddrPort(udp.LocalAddr().String()); err == nil && ap.Addr().IsLoopback() {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		e.loopback = true
	}
	if len(cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			e.Close()
			return nil, fmt.Errorf("media public ips %v: %w", cfg.PublicIPs, err)
		}
	}

	me := &webrtc.MediaEngine{}
	if err := registerCodecs(me); err != nil {
		e.Close()
		return nil, err
	}
	ir, err := registerInterceptors(me, se.LoggerFactory)
	if cfg.Baseline {
		ir, err = baselineInterceptors(me)
	}
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("media interceptors: %w", err)
	}
	e.media, e.icpt, e.se = me, ir, se
	e.api = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	if err := e.registerMetrics(cfg.Registerer); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Engine) registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	if err := reg.Register(e.metrics); err != nil {
		return fmt.Errorf("media metrics: %w", err)
	}
	e.closer = append(e.closer, func() error {
		reg.Unregister(e.metrics)
		return nil
	})
	return nil
}

// UDPAddr is the bound media UDP address.
func (e *Engine) UDPAddr() net.Addr { return e.udp.LocalAddr() }

// TCPAddr is the bound ICE-TCP address, or nil when TCP is off.
func (e *Engine) TCPAddr() net.Addr {
	if e.tcp == nil {
		return nil
	}
	return e.tcp.Addr()
}

// Close releases the media ports. PeerConnections must be closed first.
func (e *Engine) Close() error {
	var errs []error
	for i := len(e.closer) - 1; i >= 0; i-- {
		if err := e.closer[i](); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	e.closer = nil
	return errors.Join(errs...)
}

func (e *Engine) newPeerConnection(iceServers []webrtc.ICEServer) (*webrtc.PeerConnection, error) {
	return e.api.NewPeerConnection(webrtc.Configuration{
		ICEServers:   iceServers,
		BundlePolicy: webrtc.BundlePolicyMaxBundle,
	})
}

// newSubscriberPeerConnection makes a subscriber PeerConnection whose RTCP
// streams are sinks that hand every packet to rtcp as Pion's SRTCP session
// decrypts it: the subscriber's feedback is handled where it arrives, with
// no reader goroutine per RTPSender.
func (e *Engine) newSubscriberPeerConnection(iceServers []webrtc.ICEServer, rtcp func(ssrc uint32, b []byte)) (*webrtc.PeerConnection, error) {
	if e.baseline {
		return e.newPeerConnection(iceServers)
	}
	se := e.se
	se.BufferFactory = func(t packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
		if t == packetio.RTCPBufferPacket {
			return newStreamSink(func(b []byte) { rtcp(ssrc, b) })
		}
		// A subscriber PC receives no media: whatever a client sends on it
		// is discarded, never buffered.
		return newStreamSink(nil)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(e.media), webrtc.WithInterceptorRegistry(e.icpt), webrtc.WithSettingEngine(se))
	return api.NewPeerConnection(webrtc.Configuration{
		ICEServers:   iceServers,
		BundlePolicy: webrtc.BundlePolicyMaxBundle,
	})
}

// registerInterceptors installs exactly what the SFU uses, instead of
// Pion's defaults: a NACK generator towards publishers (retransmissions
// towards subscribers are served by the send path from each track's packet
// cache, not by a responder that copies every packet per subscriber), RTCP
// receiver and sender reports, and TWCC feedback towards publishers. No stats
// interceptor: nothing reads it, and it costs on every packet. They log
// through the server's logger, not Pion's default one on stderr.
func registerInterceptors(me *webrtc.MediaEngine, lf logging.LoggerFactory) (*interceptor.Registry, error) {
	ir := &interceptor.Registry{}
	gen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(lf))
	if err != nil {
		return nil, err
	}
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	ir.Add(gen)
	if err := webrtc.ConfigureRTCPReportsWithOptions(ir,
		[]report.ReceiverOption{report.WithReceiverLoggerFactory(lf)}, report.WithSenderLoggerFactory(lf)); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		return nil, err
	}
	for _, x := range []struct {
		uri  string
		kind webrtc.RTPCodecType
	}{
		{sdp.AudioLevelURI, webrtc.RTPCodecTypeAudio},
		{sdp.ABSSendTimeURI, webrtc.RTPCodecTypeVideo},
	} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: x.uri}, x.kind); err != nil {
			return nil, err
		}
	}
	if err := webrtc.ConfigureTWCCSenderWithOptions(me, ir, twcc.WithLoggerFactory(lf)); err != nil {
		return nil, err
	}
	return ir, nil
}

// registerCodecs lists what the SFU forwards. Opus for audio; VP8 first for
// video because every browser has it, then H.264 (the profiles browsers
// offer) and VP9. No transcoding ever happens, so a subscriber can only get
// a track in the codec its publisher chose.
func registerCodecs(me *webrtc.MediaEngine) error {
	videoFB := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	codecs := []struct {
		cap  webrtc.RTPCodecCapability
		pt   webrtc.PayloadType
		kind webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, 111, webrtc.RTPCodecTypeAudio},
		{webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFB}, 96, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecCapability{MimeType: "video/rtx", ClockRate: 90000, SDPFmtpLine: "apt=96"}, 97, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: videoFB}, 102, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecCapability{MimeType: "video/rtx", ClockRate: 90000, SDPFmtpLine: "apt=102"}, 103, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: videoFB}, 104, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecCapability{MimeType: "video/rtx", ClockRate: 90000, SDPFmtpLine: "apt=104"}, 105, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032", RTCPFeedback: videoFB}, 106, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecCapability{MimeType: "video/rtx", ClockRate: 90000, SDPFmtpLine: "apt=106"}, 107, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: videoFB}, 98, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecCapability{MimeType: "video/rtx", ClockRate: 90000, SDPFmtpLine: "apt=98"}, 99, webrtc.RTPCodecTypeVideo},
	}
	for _, c := range codecs {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: c.cap, PayloadType: c.pt}, c.kind); err != nil {
			return fmt.Errorf("register codec %s: %w", c.cap.MimeType, err)
		}
	}
	return nil
}

// pionLoggerFactory routes Pion's logs into slog at debug level, except
// warnings and errors, which an operator should see.
type pionLoggerFactory struct{ log *slog.Logger }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) Trace(string)              {}
func (l pionLogger) Tracef(string, ...any)     {}
func (l pionLogger) Debug(msg string)          { l.log.Debug(msg) }
func (l pionLogger) Debugf(f string, a ...any) { l.debugf(f, a) }
func (l pionLogger) Info(msg string)           { l.log.Debug(msg) }
func (l pionLogger) Infof(f string, a ...any)  { l.debugf(f, a) }

// debugf formats only when debug logs are wanted: formatting costs on
// Pion's paths, and some of Pion's debug lines print structs (a new
// track) that another of its goroutines is still writing, a data race the
// race detector reports.
func (l pionLogger) debugf(f string, a []any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(f, a...))
	}
}
func (l pionLogger) Warn(msg string)           { l.warn(msg) }
func (l pionLogger) Warnf(f string, a ...any)  { l.warn(fmt.Sprintf(f, a...)) }
func (l pionLogger) Error(msg string)          { l.error(msg) }
func (l pionLogger) Errorf(f string, a ...any) { l.error(fmt.Sprintf(f, a...)) }

// routineWarnings are what Pion logs as warnings or errors on every
// ordinary connect and hang-up; an operator can do nothing about them.
var routineWarnings = []string{
	"closed pipe",
	"already closed",
	"conn is closed",
	"Failed to ping without candidate pairs",
	"Incoming unhandled RTCP",
	"the agent is closed",    // candidates trickling in while a peer leaves
	"no endpoint for packet", // DTLS arriving just before its endpoint exists
	// pion/srtp v3.1.3 answers this when its session closed while a new
	// stream was being opened (a hang-up as media arrives).
	"failed to cast child",
	// A connection closed before it connected (a participant that left
	// at once): ICE's start is cancelled, and no DTLS ever started.
	"connecting canceled by caller",
	"the DTLS transport has not started yet",
}

func (l pionLogger) warn(msg string) {
	if routine(msg) {
		l.log.Debug(msg)
		return
	}
	l.log.Warn(msg)
}

func (l pionLogger) error(msg string) {
	if routine(msg) {
		l.log.Debug(msg)
		return
	}
	l.log.Error(msg)
}

func routine(msg string) bool {
	for _, r := range routineWarnings {
		if strings.Contains(msg, r) {
			return true
		}
	}
	return false
}
