package main

// The bot that TestNetnsRelayOnlyThroughNAT runs inside its namespaces: the
// test binary re-executed with -test.run=^TestNetnsChildBot$ and its
// parameters in HUDDLE_NETNS_* variables. It joins, optionally publishes
// synthetic VP8 and Opus whose frames carry a counter, and prints a
// machine-readable status line every 100 ms until its stdin closes:
//
//	NETNS joined id=PA_x identity=behind-nat
//	NETNS status v:office=120 a:office=121 order=ok pub=connected sub=connected
//	       pubpair=relay subpair=relay offered=2 stripped=0 everconnected=1
//	NETNS error <text>

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Environment of a bot child.
const (
	envNetnsChild    = "HUDDLE_NETNS_CHILD"          // "bot"
	envNetnsURL      = "HUDDLE_NETNS_URL"            // the server's page URL
	envNetnsToken    = "HUDDLE_NETNS_TOKEN"          // access token
	envNetnsRelay    = "HUDDLE_NETNS_RELAY_ONLY"     // "1": sdk.Options{RelayOnly: true}
	envNetnsPublish  = "HUDDLE_NETNS_PUBLISH"        // "1": publish VP8 + Opus
	envNetnsNoICE    = "HUDDLE_NETNS_NO_ICE_SERVERS" // an address to proxy the WebSocket on, dropping the server's ICE servers
	envNetnsLifetime = "HUDDLE_NETNS_LIFETIME"       // the bot exits after this even if stdin stays open
)

// Helper process of TestNetnsRelayOnlyThroughNAT (skipped when run on its own).
func TestNetnsChildBot(t *testing.T) {
	if os.Getenv(envNetnsChild) != "bot" {
		t.Skip("helper process of TestNetnsRelayOnlyThroughNAT; runs only when that test starts it in a namespace")
	}
	if err := runNetnsBot(); err != nil {
		fmt.Printf("NETNS error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		t.Fatal(err)
	}
}

func runNetnsBot() error {
	lifetime, err := time.ParseDuration(os.Getenv(envNetnsLifetime))
	if err != nil {
		lifetime = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), lifetime)
	defer cancel()
	go func() { // the parent closes stdin (or dies): leave
		_, _ = bufio.NewReader(os.Stdin).ReadString(0)
		cancel()
	}()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	serverURL := os.Getenv(envNetnsURL)
	var stripped atomic.Int32
	if ip := os.Getenv(envNetnsNoICE); ip != "" {
		if serverURL, err = iceStrippingProxy(ctx, ip, serverURL, &stripped); err != nil {
			return err
		}
	}
	frames := newNetnsFrameLog()
	joinCtx, joinCancel := context.WithTimeout(ctx, 20*time.Second)
	room, err := sdk.Join(joinCtx, serverURL, os.Getenv(envNetnsToken), sdk.Options{
		Logger:    log,
		RelayOnly: os.Getenv(envNetnsRelay) == "1",
		OnTrack:   frames.onTrack,
	})
	joinCancel()
	if err != nil {
		return fmt.Errorf("join %s: %w", serverURL, err)
	}
	defer room.Leave()
	fmt.Printf("NETNS joined id=%s identity=%s\n", room.Self().ID, room.Self().Identity)
	if os.Getenv(envNetnsPublish) == "1" {
		if err := publishCounted(ctx, room); err != nil {
			return err
		}
	}

	everConnected := false
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-room.Done():
			return fmt.Errorf("session ended: %v", room.Err())
		case <-tick.C:
		}
		pub, sub := room.PublisherPC().ICEConnectionState(), room.SubscriberPC().ICEConnectionState()
		for _, s := range []webrtc.ICEConnectionState{pub, sub} {
			if s == webrtc.ICEConnectionStateConnected || s == webrtc.ICEConnectionStateCompleted {
				everConnected = true
			}
		}
		pubPair, subPair := pairType(room.PublisherPC()), pairType(room.SubscriberPC())
		if pubPair != "none" || subPair != "none" {
			everConnected = true
		}
		fmt.Printf("NETNS status %s pub=%s sub=%s pubpair=%s subpair=%s offered=%d stripped=%d everconnected=%t\n",
			frames.summary(), pub, sub, pubPair, subPair, offeredTracks(room.SubscriberPC()), stripped.Load(), everConnected)
	}
}

// pairType is "<local type>:<local addr>-<remote type>:<remote addr>" of a
// PeerConnection's selected ICE pair, or "none".
func pairType(pc *webrtc.PeerConnection) string {
	sctp := pc.SCTP()
	if sctp == nil || sctp.Transport() == nil || sctp.Transport().ICETransport() == nil {
		return "none"
	}
	p, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || p == nil {
		return "none"
	}
	return fmt.Sprintf("%s:%s:%d-%s:%s:%d", p.Local.Typ, p.Local.Address, p.Local.Port, p.Remote.Typ, p.Remote.Address, p.Remote.Port)
}

// offeredTracks counts the subscriber PC's receiving transceivers: the
// tracks the server has offered this bot, whether or not media arrives.
func offeredTracks(pc *webrtc.PeerConnection) int {
	n := 0
	for _, tr := range pc.GetTransceivers() {
		if tr.Mid() != "" && tr.Receiver() != nil && tr.Direction() != webrtc.RTPTransceiverDirectionInactive {
			n++
		}
	}
	return n
}

// Synthetic media, as in sdk/harness_test.go: a 32-bit counter at byte 10
// of each frame; VP8 frames fit one RTP packet.
const (
	netnsCounterAt = 10
	netnsFrameSize = 900
)

func publishCounted(ctx context.Context, r *sdk.Room) error {
	video, err := r.PublishTrack(sdk.VP8, "camera")
	if err != nil {
		return err
	}
	audio, err := r.PublishTrack(sdk.Opus, "microphone")
	if err != nil {
		return err
	}
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		key := true
		for n := uint32(0); ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-video.KeyframeRequests():
				key = true
			case <-tick.C:
			}
			f := make([]byte, netnsFrameSize)
			if key {
				f[0] = 0x10                                                   // keyframe, show_frame
				copy(f[3:], []byte{0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}) // start code, 320x240
			} else {
				f[0] = 0x11
			}
			binary.BigEndian.PutUint32(f[netnsCounterAt:], n)
			if err := video.WriteSample(media.Sample{Data: f, Duration: 20 * time.Millisecond}); err != nil {
				return
			}
			key = false
			a := make([]byte, 40)
			a[0] = 0x78 // TOC of a 20 ms frame
			binary.BigEndian.PutUint32(a[netnsCounterAt:], n)
			if err := audio.WriteSample(media.Sample{Data: a, Duration: 20 * time.Millisecond}); err != nil {
				return
			}
		}
	}()
	return nil
}

// netnsFrameLog counts received frames per kind and sender and remembers
// the first counter that did not follow its predecessor.
type netnsFrameLog struct {
	mu     sync.Mutex
	count  map[string]int    // "v:identity" / "a:identity"
	last   map[string]uint32 // last counter per key
	broken string            // first out-of-order event, "" if none
}

func newNetnsFrameLog() *netnsFrameLog {
	return &netnsFrameLog{count: map[string]int{}, last: map[string]uint32{}}
}

func (l *netnsFrameLog) onTrack(rt *sdk.RemoteTrack) {
	from := rt.Participant.Identity
	if from == "" {
		from = rt.Participant.ID
	}
	var sb *samplebuilder.SampleBuilder
	key := ""
	switch mime := strings.ToLower(rt.Track.Codec().MimeType); mime {
	case "video/vp8":
		sb, key = samplebuilder.New(128, &codecs.VP8Packet{}, 90000), "v:"+from
	case "audio/opus":
		sb, key = samplebuilder.New(128, &codecs.OpusPacket{}, 48000), "a:"+from
	default:
		l.mu.Lock()
		if l.broken == "" {
			l.broken = "unexpected-codec:" + mime
		}
		l.mu.Unlock()
		buf := make([]byte, 1600)
		for {
			if _, _, err := rt.Track.Read(buf); err != nil {
				return
			}
		}
	}
	for {
		pkt, _, err := rt.Track.ReadRTP()
		if err != nil {
			return
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			if len(s.Data) < netnsCounterAt+4 {
				continue
			}
			n := binary.BigEndian.Uint32(s.Data[netnsCounterAt:])
			l.mu.Lock()
			if prev, ok := l.last[key]; ok && n != prev+1 && l.broken == "" {
				l.broken = fmt.Sprintf("%s:%d-after-%d", key, n, prev)
			}
			l.last[key] = n
			l.count[key]++
			l.mu.Unlock()
		}
	}
}

// summary is "k=count ... order=ok|<first break>".
func (l *netnsFrameLog) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]string, 0, len(l.count))
	for k := range l.count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, l.count[k])
	}
	order := "ok"
	if l.broken != "" {
		order = l.broken
	}
	b.WriteString("order=" + order)
	return b.String()
}

// iceStrippingProxy forwards a bot's signaling WebSocket to the server
// unchanged except that the joined message loses its iceServers: the bot
// then has no TURN relay, only its host candidates. It listens on ip (the
// namespace's own address, not loopback: the SDK gathers only loopback
// candidates for a loopback server URL) and returns the URL to join.
func iceStrippingProxy(ctx context.Context, ip, serverURL string, stripped *atomic.Int32) (string, error) {
	up, err := url.Parse(serverURL)
	if err != nil {
		return "", err
	}
	up.Scheme, up.Path = "ws", "/ws"
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", fmt.Errorf("proxy: %w", err)
	}
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		down, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer down.Close()
		upc, _, err := websocket.DefaultDialer.DialContext(r.Context(), up.String(), nil)
		if err != nil {
			fmt.Printf("NETNS error proxy dial %s: %v\n", up, err)
			return
		}
		defer upc.Close()
		done := make(chan struct{}, 2)
		go func() { // bot -> server, unchanged
			defer func() { done <- struct{}{} }()
			for {
				mt, data, err := down.ReadMessage()
				if err != nil {
					return
				}
				if err := upc.WriteMessage(mt, data); err != nil {
					return
				}
			}
		}()
		go func() { // server -> bot, joined without ICE servers
			defer func() { done <- struct{}{} }()
			for {
				mt, data, err := upc.ReadMessage()
				if err != nil {
					return
				}
				if m, err := protocol.Decode(data); err == nil {
					if j, ok := m.(*protocol.Joined); ok {
						stripped.Add(int32(len(j.ICEServers)))
						j.ICEServers = nil
						if data, err = protocol.Encode(j); err != nil {
							return
						}
					}
				}
				if err := down.WriteMessage(mt, data); err != nil {
					return
				}
			}
		}()
		<-done
	})}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Printf("NETNS error proxy: %v\n", err)
		}
	}()
	go func() { <-ctx.Done(); srv.Close() }()
	return "http://" + ln.Addr().String(), nil
}
