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
//   - Forwarder: one published track; reads RTP and fans it out.
//   - DownTrack: one subscriber's copy of one track, with its own SSRC,
//     sequence numbers and timestamps and its own send queue.
package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
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
	Logger    *slog.Logger
}

// Engine holds what every PeerConnection of the server shares.
type Engine struct {
	api    *webrtc.API
	udp    net.PacketConn
	tcp    net.Listener
	log    *slog.Logger
	closer []func() error
}

// NewEngine opens the media ports and builds the Pion API.
func NewEngine(cfg Config) (*Engine, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	e := &Engine{log: log}

	udp, err := net.ListenPacket("udp", cfg.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("media udp listen %s: %w", cfg.UDPAddr, err)
	}
	e.udp = udp
	e.closer = append(e.closer, udp.Close)

	se := webrtc.SettingEngine{}
	se.LoggerFactory = pionLoggerFactory{log: log}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetReceiveMTU(1600)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	udpMux := webrtc.NewICEUDPMux(se.LoggerFactory.NewLogger("udpmux"), udp)
	e.closer = append(e.closer, udpMux.Close)
	se.SetICEUDPMux(udpMux)

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
	// Audio levels (RFC 6464) from publishers, for the speaker detector;
	// recvonly: the publisher PCs' transceivers only (speaker.go).
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: AudioLevelURI}, webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverDirectionRecvonly); err != nil {
		e.Close()
		return nil, fmt.Errorf("audio level extension: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		e.Close()
		return nil, fmt.Errorf("media interceptors: %w", err)
	}
	e.api = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	return e, nil
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
func (l pionLogger) Debugf(f string, a ...any) { l.log.Debug(fmt.Sprintf(f, a...)) }
func (l pionLogger) Info(msg string)           { l.log.Debug(msg) }
func (l pionLogger) Infof(f string, a ...any)  { l.log.Debug(fmt.Sprintf(f, a...)) }
func (l pionLogger) Warn(msg string)           { l.log.Warn(msg) }
func (l pionLogger) Warnf(f string, a ...any)  { l.log.Warn(fmt.Sprintf(f, a...)) }
func (l pionLogger) Error(msg string)          { l.log.Error(msg) }
func (l pionLogger) Errorf(f string, a ...any) { l.log.Error(fmt.Sprintf(f, a...)) }

// routineWarnings are what Pion logs as warnings on every ordinary connect
// and hang-up; an operator can do nothing about them.
var routineWarnings = []string{
	"closed pipe",
	"already closed",
	"conn is closed",
	"Failed to ping without candidate pairs",
	"Incoming unhandled RTCP",
}

func (l pionLogger) warn(msg string) {
	for _, r := range routineWarnings {
		if strings.Contains(msg, r) {
			l.log.Debug(msg)
			return
		}
	}
	l.log.Warn(msg)
}
