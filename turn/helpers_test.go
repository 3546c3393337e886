package turn

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v3"
	pturn "github.com/pion/turn/v4"
)

// Every test address is on loopback. 127.0.0.1 hosts the relay and the
// clients; 127.0.0.2 stands in for the SFU's media address; 127.0.0.3 is a
// loopback address the policy must refuse.
var (
	relayHost = netip.MustParseAddr("127.0.0.1")
	sfuHost   = netip.MustParseAddr("127.0.0.2")
	otherHost = netip.MustParseAddr("127.0.0.3")
)

// testLogger sends slog output to t.Log until the test ends; pion's
// goroutines may still log while a relay winds down.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// startServer starts a relay on 127.0.0.1 with every port chosen by the
// kernel, the SFU at sfu, and lets mutate adjust the config first.
func startServer(t testing.TB, sfu []netip.AddrPort, mutate func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		Secret:      []byte("test-secret"),
		UDPAddr:     "127.0.0.1:0",
		TCPAddr:     "127.0.0.1:0",
		RelayBindIP: relayHost,
		SFUAddrs:    sfu,
		Logger:      testLogger(t),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// peer is a plain UDP socket that records what it receives: the SFU
// stand-in, or a target that must receive nothing.
type peer struct {
	conn  *net.UDPConn
	count atomic.Int64
	mu    sync.Mutex
	got   [][]byte
	froms []netip.AddrPort
}

func listenPeer(t testing.TB, ip netip.Addr) *peer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatalf("listen peer on %v: %v", ip, err)
	}
	p := &peer{conn: conn}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.got = append(p.got, append([]byte(nil), buf[:n]...))
			p.froms = append(p.froms, from)
			p.mu.Unlock()
			p.count.Add(1)
		}
	}()
	t.Cleanup(func() { _ = conn.Close() })
	return p
}

func (p *peer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *peer) udpAddr() *net.UDPAddr { return p.conn.LocalAddr().(*net.UDPAddr) }

func (p *peer) packets() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.got...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// quietPion keeps pion's client logs out of test output.
type quietPion struct{}

func (quietPion) NewLogger(string) logging.LeveledLogger {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	return f.NewLogger("turnc")
}

// turnClient is a pion/turn client talking UDP to the relay.
type turnClient struct {
	*pturn.Client
	conn net.PacketConn // the client's own socket to the server
}

func newUDPClient(t testing.TB, srv *Server, cred Credentials) *turnClient {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("client socket: %v", err)
	}
	return newClientOn(t, conn, srv.Addrs().UDP.String(), cred)
}

func newClientOn(t testing.TB, conn net.PacketConn, server string, cred Credentials) *turnClient {
	t.Helper()
	c, err := pturn.NewClient(&pturn.ClientConfig{
		TURNServerAddr: server,
		Username:       cred.Username,
		Password:       cred.Password,
		Conn:           conn,
		LoggerFactory:  quietPion{},
	})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	if err := c.Listen(); err != nil {
		t.Fatalf("client Listen: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		_ = conn.Close()
	})
	return &turnClient{Client: c, conn: conn}
}

// allocate allocates a UDP relay and closes it at the end of the test.
func (c *turnClient) allocate(t testing.TB) net.PacketConn {
	t.Helper()
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	return relay
}

// turnCode extracts the STUN error code of a refused TURN request.
func turnCode(err error) stun.ErrorCode {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return te.ErrorCodeAttr.Code
	}
	return 0
}

// rawClient speaks TURN by hand, for requests the pion client never sends
// (a ChannelBind without a permission, a Send indication to an address
// without permission, an unauthenticated Allocate).
type rawClient struct {
	t      testing.TB
	conn   *net.UDPConn
	server *net.UDPAddr

	username, realm string
	nonce           stun.Nonce
	integrity       stun.MessageIntegrity
}

func newRawClient(t testing.TB, srv *Server) *rawClient {
	t.Helper()
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(relayHost, 0)))
	if err != nil {
		t.Fatalf("raw client socket: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawClient{t: t, conn: conn, server: net.UDPAddrFromAddrPort(srv.Addrs().UDP)}
}

// roundTrip sends a request and returns the response with its transaction
// ID, retransmitting a few times as STUN over UDP must.
func (r *rawClient) roundTrip(setters ...stun.Setter) *stun.Message {
	r.t.Helper()
	req, err := stun.Build(setters...)
	if err != nil {
		r.t.Fatalf("build request: %v", err)
	}
	buf := make([]byte, 2048)
	for try := 0; try < 5; try++ {
		if _, err := r.conn.WriteToUDP(req.Raw, r.server); err != nil {
			r.t.Fatalf("send request: %v", err)
		}
		_ = r.conn.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, _, err := r.conn.ReadFromUDP(buf)
			if err != nil {
				break // timeout: retransmit
			}
			res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if res.Decode() == nil && res.TransactionID == req.TransactionID {
				return res
			}
		}
	}
	r.t.Fatalf("no response to %v", req.Type)
	return nil
}

// send transmits an indication or ChannelData; nothing answers those.
func (r *rawClient) send(raw []byte) {
	r.t.Helper()
	if _, err := r.conn.WriteToUDP(raw, r.server); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

func (r *rawClient) auth() []stun.Setter {
	u, rl := stun.NewUsername(r.username), stun.NewRealm(r.realm)
	return []stun.Setter{&u, &rl, &r.nonce, &r.integrity}
}

// allocate authenticates the long-term way: a bare request earns a 401
// with realm and nonce, then the request is repeated with integrity.
func (r *rawClient) allocate(cred Credentials) {
	r.t.Helper()
	res := r.roundTrip(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		requestedUDP, stun.Fingerprint)
	if code := errorCode(res); code != stun.CodeUnauthorized {
		r.t.Fatalf("unauthenticated Allocate: got %v, want 401", res)
	}
	var realm stun.Realm
	if err := realm.GetFrom(res); err != nil {
		r.t.Fatalf("401 without REALM: %v", err)
	}
	if err := r.nonce.GetFrom(res); err != nil {
		r.t.Fatalf("401 without NONCE: %v", err)
	}
	r.username, r.realm = cred.Username, realm.String()
	r.integrity = stun.NewLongTermIntegrity(cred.Username, r.realm, cred.Password)
	setters := append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		requestedUDP}, r.auth()...)
	res = r.roundTrip(append(setters, stun.Fingerprint)...)
	if res.Type.Class != stun.ClassSuccessResponse {
		r.t.Fatalf("Allocate: %v (code %d)", res, errorCode(res))
	}
}

// request sends an authenticated request of method with attrs.
func (r *rawClient) request(method stun.Method, attrs ...stun.Setter) *stun.Message {
	r.t.Helper()
	setters := append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, attrs...)
	setters = append(setters, r.auth()...)
	return r.roundTrip(append(setters, stun.Fingerprint)...)
}

func errorCode(m *stun.Message) stun.ErrorCode {
	var code stun.ErrorCodeAttribute
	if m.Type.Class != stun.ClassErrorResponse || code.GetFrom(m) != nil {
		return 0
	}
	return code.Code
}

// rawAttr adds one attribute verbatim.
type rawAttr struct {
	typ stun.AttrType
	val []byte
}

func (a rawAttr) AddTo(m *stun.Message) error {
	m.Add(a.typ, a.val)
	return nil
}

// requestedUDP is REQUESTED-TRANSPORT: UDP (protocol 17, RFFU zero).
var requestedUDP = rawAttr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}}

// peerAttr is an XOR-PEER-ADDRESS.
type peerAttr netip.AddrPort

func (p peerAttr) AddTo(m *stun.Message) error {
	ap := netip.AddrPort(p)
	return stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}.AddToAs(m, stun.AttrXORPeerAddress)
}

// channelAttr is a CHANNEL-NUMBER.
func channelAttr(n uint16) rawAttr {
	return rawAttr{stun.AttrChannelNumber, []byte{byte(n >> 8), byte(n), 0, 0}}
}

// channelData frames payload as TURN ChannelData on channel n.
func channelData(n uint16, payload []byte) []byte {
	out := []byte{byte(n >> 8), byte(n), byte(len(payload) >> 8), byte(len(payload))}
	out = append(out, payload...)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	return out
}
