package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/sdk"
)

// maxClockSkew is how far the clocks may differ before doctor fails: tokens
// are valid from a minute before they are minted, so half of that leaves
// room for the Date header's one-second resolution and the round trip.
const maxClockSkew = 30 * time.Second

func (d *doctorRun) checkHTTP(ctx context.Context) (checkResult, time.Time) {
	res := checkResult{Name: "http"}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url+"/healthz", nil)
	if err != nil {
		res.Detail, res.Fix = err.Error(), "pass --url as http(s)://host:port"
		return res, time.Time{}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		res.Detail = fmt.Sprintf("GET /healthz: %v", err)
		res.Fix = fmt.Sprintf("is `huddle serve` running? It listens on --http-addr (default %s); open that TCP port, or check --url", ":7880")
		return res, time.Time{}
	}
	defer resp.Body.Close()
	var body struct {
		Status  string `json:"status"`
		DevMode bool   `json:"devMode"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
	if resp.StatusCode != http.StatusOK || err != nil || body.Status != "ok" {
		res.Detail = fmt.Sprintf("GET /healthz: %s, not a healthy huddle server", resp.Status)
		res.Fix = "check --url: something else answers there (a proxy must forward / and /ws to huddle)"
		return res, time.Time{}
	}
	res.OK = true
	res.Detail = "GET /healthz: ok"
	if body.DevMode {
		res.Detail += " (dev mode: no API keys configured)"
	}
	date, _ := http.ParseTime(resp.Header.Get("Date"))
	return res, date
}

// checkClock compares the server's Date header with this machine's clock.
func checkClock(server, local time.Time) checkResult {
	res := checkResult{Name: "clock"}
	if server.IsZero() {
		res.Detail = "the server sent no Date header"
		res.Fix = "a proxy in front strips Date; let it through"
		return res
	}
	skew := local.Sub(server).Round(time.Second)
	if skew.Abs() > maxClockSkew {
		res.Detail = fmt.Sprintf("this machine's clock is %v off the server's", skew)
		res.Fix = "tokens minted on one and checked on the other fail when the clocks differ by over a minute: run NTP on both (timedatectl set-ntp true)"
		return res
	}
	res.OK = true
	res.Detail = fmt.Sprintf("within %v of the server's", max(skew.Abs(), time.Second))
	return res
}

// checkWebSocket opens the signaling WebSocket, as a page would, and
// closes it without joining.
func (d *doctorRun) checkWebSocket(ctx context.Context) checkResult {
	res := checkResult{Name: "websocket"}
	u, err := url.Parse(d.url)
	if err != nil {
		res.Detail = err.Error()
		return res
	}
	u.Scheme = map[string]string{"https": "wss", "http": "ws"}[u.Scheme]
	u.Path = strings.TrimSuffix(u.Path, "/") + "/ws"
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, u.String(), nil)
	if err != nil {
		res.Detail = fmt.Sprintf("GET /ws: %v", err)
		if resp != nil {
			res.Detail += " (" + resp.Status + ")"
		}
		res.Fix = "HTTP answers but the WebSocket upgrade fails: a reverse proxy must pass the Upgrade and Connection headers to /ws (nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection upgrade)"
		return res
	}
	conn.Close()
	res.OK = true
	res.Detail = "GET /ws: upgraded"
	return res
}

// iceProbe is what one media check saw: the connection's selected pair,
// or what the server offered when nothing connected.
type iceProbe struct {
	pair       *webrtc.ICECandidatePair
	remote     []webrtc.ICECandidateStats // the server's candidates
	relays     []webrtc.ICECandidateStats // our relay candidates (TURN allocations)
	iceServers int
	err        error
}

// probe joins with opts and waits until the publisher PeerConnection
// (which always carries the data channels) is connected, DTLS included.
func (d *doctorRun) probe(ctx context.Context, token string, opts sdk.Options) iceProbe {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	opts.NoAutoReconnect = true
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	room, err := sdk.Join(ctx, d.url, token, opts)
	if err != nil {
		return iceProbe{err: fmt.Errorf("join: %w", err)}
	}
	defer room.Leave()
	pc := room.PublisherPC()
	var p iceProbe
	for pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		select {
		case <-ctx.Done():
			p.err = errNoConnection
		case <-time.After(50 * time.Millisecond):
			continue
		}
		break
	}
	if p.err == nil {
		if sctp := pc.SCTP(); sctp != nil {
			p.pair, _ = sctp.Transport().ICETransport().GetSelectedCandidatePair()
		}
	}
	p.iceServers = len(pc.GetConfiguration().ICEServers)
	for _, s := range pc.GetStats() {
		c, ok := s.(webrtc.ICECandidateStats)
		switch {
		case !ok:
		case c.Type == webrtc.StatsTypeRemoteCandidate:
			p.remote = append(p.remote, c)
		case c.CandidateType == webrtc.ICECandidateTypeRelay:
			p.relays = append(p.relays, c)
		}
	}
	return p
}

// offered lists the server's candidates of one protocol as ip:port.
func (p iceProbe) offered(proto string) []string {
	var out []string
	for _, c := range p.remote {
		if c.Protocol == proto && c.CandidateType == webrtc.ICECandidateTypeHost {
			a := net.JoinHostPort(c.IP, strconv.Itoa(int(c.Port)))
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

func pairString(p *webrtc.ICECandidatePair) string {
	if p == nil {
		return "?"
	}
	return fmt.Sprintf("%s %s:%d -> %s %s %s", p.Local.Typ, p.Local.Address, p.Local.Port, p.Remote.Protocol, p.Remote.Typ, remoteAddr(p))
}

func remoteAddr(p *webrtc.ICECandidatePair) string {
	return net.JoinHostPort(p.Remote.Address, strconv.Itoa(int(p.Remote.Port)))
}

// direct reports whether the probe connected to an address the server
// advertises. A connection can also come up the other way round, the
// server's checks reaching this machine (a peer-reflexive pair): that says
// nothing about whether clients can reach the server, so it does not count.
func (p iceProbe) direct(proto string) bool {
	return p.err == nil && p.pair != nil && slices.Contains(p.offered(proto), remoteAddr(p.pair))
}

// checkUDP: a bot gathering only UDP candidates and using no STUN/TURN
// server reaches the address and port the server advertises.
func (d *doctorRun) checkUDP(ctx context.Context, token string) checkResult {
	p := d.probe(ctx, token, sdk.Options{NoServerICEServers: true,
		ICENetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}})
	res := checkResult{Name: "media-udp"}
	if p.direct("udp") {
		res.OK, res.Detail = true, "ICE over UDP connected: "+pairString(p.pair)
		return res
	}
	addrs := p.offered("udp")
	if (p.err != nil && p.err != errNoConnection) || len(addrs) == 0 {
		res.Detail = fmt.Sprintf("%v; the server offered no UDP candidate", p.err)
		res.Fix = "check --media-udp-addr and --media-interfaces on the server"
		return res
	}
	port := portOf(addrs[0])
	res.Detail = fmt.Sprintf("UDP unreachable: no ICE connection within %v to the advertised media address %s%s", d.timeout, strings.Join(addrs, ", "), p.reverse())
	res.Fix = fmt.Sprintf("if %s is not the address clients reach the server at, set --public-ips (HUDDLE_PUBLIC_IPS) to its public address, or --stun-discover to find it; "+
		"if it is, open UDP port %s to the server (firewall, security group; in Docker publish %s:%s/udp, in Kubernetes use hostNetwork or a hostPort)",
		hostOf(addrs[0]), port, port, port)
	return res
}

// checkTCP: the same with TCP candidates only (the bot's active ICE-TCP
// to the server's passive one).
func (d *doctorRun) checkTCP(ctx context.Context, token string) checkResult {
	p := d.probe(ctx, token, sdk.Options{NoServerICEServers: true,
		ICENetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6}})
	res := checkResult{Name: "ice-tcp"}
	if p.direct("tcp") {
		res.OK, res.Detail = true, "ICE over TCP connected: "+pairString(p.pair)
		return res
	}
	addrs := p.offered("tcp")
	if (p.err != nil && p.err != errNoConnection) || len(addrs) == 0 {
		res.Detail = fmt.Sprintf("%v; the server offered no TCP candidate", p.err)
		res.Fix = "ICE-TCP is off: set --media-tcp-addr :7882 on the server so that clients behind UDP-blocking firewalls can connect"
		return res
	}
	port := portOf(addrs[0])
	res.Detail = fmt.Sprintf("no ICE-TCP connection within %v to the advertised address %s%s", d.timeout, strings.Join(addrs, ", "), p.reverse())
	res.Fix = fmt.Sprintf("if %s is not the server's public address, set --public-ips; if it is, open TCP port %s to the server (Docker: -p %s:%s/tcp)",
		hostOf(addrs[0]), port, port, port)
	return res
}

// checkTURN: a relay-only bot, with the fresh TURN credentials the server
// hands out at join, allocates a relay and reaches the media port through it.
func (d *doctorRun) checkTURN(ctx context.Context, token string) checkResult {
	p := d.probe(ctx, token, sdk.Options{RelayOnly: true})
	res := checkResult{Name: "turn"}
	switch {
	case p.err == nil:
		res.OK, res.Detail = true, "relayed connection: "+pairString(p.pair)
	case p.err != errNoConnection:
		res.Detail = p.err.Error()
	case p.iceServers == 0:
		res.Detail = "the server hands out no TURN server"
		res.Fix = "run the embedded relay (--turn=on, the default) or point --turn-external-urls at yours"
	case len(p.relays) == 0:
		res.Detail = "no TURN allocation: the relay did not answer or refused the credentials"
		res.Fix = "open UDP and TCP port 3478 (--turn-udp-addr/--turn-tcp-addr) to the server; set --turn-public-host to the name clients reach it by; with an external TURN, give it the same --turn-secret"
	default:
		r := p.relays[0]
		res.Detail = fmt.Sprintf("the relay allocated %s:%d but could not reach the media address through it", r.IP, r.Port)
		res.Fix = "the relay sends to the media address the server advertises: if that is wrong, fix --public-ips; set --turn-relay-ip to the relay's public address (1:1 NAT) and open the relay ports (--turn-relay-ports); the relay must reach the server's media address (--turn-allow-peers)"
	}
	return res
}

// reverse notes a connection that came up only from the server's side.
func (p iceProbe) reverse() string {
	if p.err != nil || p.pair == nil {
		return ""
	}
	return " (the server's checks reached this machine instead, " + pairString(p.pair) + ")"
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
