package turn

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec
	"encoding/base64"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	pturn "github.com/pion/turn/v4"
)

// The REST scheme round-trips: the username carries the expiry, the
// password is base64(HMAC-SHA1(secret, username)), and pion's own
// coturn-compatible handler derives the same key from it.
func TestCredentialsRoundTrip(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cret")
	now := time.Unix(1_700_000_000, 0)
	c := MintCredentials(secret, "alice:phone", 90*time.Minute, now)

	if c.Username != "1700005400:alice:phone" {
		t.Fatalf("username %q", c.Username)
	}
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(c.Username))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); c.Password != want {
		t.Fatalf("password %q, want %q", c.Password, want)
	}
	if !c.Expires.Equal(now.Add(90*time.Minute)) || c.TTL != 90*time.Minute {
		t.Fatalf("expires %v ttl %v", c.Expires, c.TTL)
	}

	user, expires, err := ParseUsername(c.Username, now)
	if err != nil || user != "alice:phone" || !expires.Equal(c.Expires) {
		t.Fatalf("ParseUsername = %q, %v, %v", user, expires, err)
	}
	if _, _, err := ParseUsername(c.Username, c.Expires); err == nil {
		t.Fatalf("username accepted at its expiry")
	}
	for _, bad := range []string{"", "alice", "x:alice", "-5:alice", ":alice"} {
		if _, _, err := ParseUsername(bad, now); err == nil {
			t.Fatalf("ParseUsername(%q) accepted", bad)
		}
	}

	// Interop: pion's LongTermTURNRESTAuthHandler (the coturn scheme) gives
	// the key our handler gives. It checks expiry against the wall clock, so
	// mint for now.
	live := MintCredentials(secret, "bob", time.Hour, time.Now())
	pionKey, ok := pturn.LongTermTURNRESTAuthHandler(string(secret), nil)(live.Username, "huddle", &net.UDPAddr{})
	if !ok {
		t.Fatal("pion refused our credentials")
	}
	srv, err := New(Config{Secret: secret, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ourKey, ok := srv.authenticate(live.Username, "huddle", &net.UDPAddr{})
	if !ok || !bytes.Equal(ourKey, pionKey) {
		t.Fatalf("key mismatch: ours %x (%v), pion %x", ourKey, ok, pionKey)
	}
	if !bytes.Equal(ourKey, pturn.GenerateAuthKey(live.Username, "huddle", live.Password)) {
		t.Fatal("key is not MD5(username:realm:password)")
	}
	if _, ok := srv.authenticate(live.Username, "elsewhere", &net.UDPAddr{}); ok {
		t.Fatal("wrong realm accepted")
	}
	if got := srv.Stats().AuthFailures[authWrongRealm]; got != 1 {
		t.Fatalf("wrong realm failures = %d", got)
	}
}

func TestServerCredentialsUseTTL(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{Secret: []byte("x"), CredentialTTL: 2 * time.Hour, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	srv.now = func() time.Time { return now }
	c := srv.Credentials("carol")
	if c.Username != "1800007200:carol" || c.TTL != 2*time.Hour {
		t.Fatalf("credentials %+v", c)
	}
	// Without a configured secret each server makes its own.
	a, _ := New(Config{Logger: testLogger(t)})
	b, _ := New(Config{Logger: testLogger(t)})
	if bytes.Equal(a.cfg.Secret, b.cfg.Secret) || len(a.cfg.Secret) < 32 {
		t.Fatal("generated secrets are not random")
	}
}

func TestPermitIP(t *testing.T) {
	t.Parallel()
	p := newPeerPolicy(
		[]netip.Prefix{netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("::ffff:192.168.77.0/120")},
		[]netip.AddrPort{netip.MustParseAddrPort("10.0.0.5:7882"), netip.MustParseAddrPort("[fd00::5]:0")},
	)
	p.setSelf([]netip.Addr{netip.MustParseAddr("203.0.114.9")})
	for _, tc := range []struct {
		ip     string
		ok     bool
		reason string
	}{
		{"8.8.8.8", true, peerGlobal},
		{"2606:4700::1111", true, peerGlobal},
		{"10.0.0.5", true, peerSFU},
		{"::ffff:10.0.0.5", true, peerSFU},
		{"fd00::5", true, peerSFU},
		{"10.9.3.4", true, peerAllowList},
		{"192.168.77.20", true, peerAllowList},
		{"203.0.114.9", false, peerSelf},
		{"127.0.0.1", false, peerNonGlobal},
		{"::1", false, peerNonGlobal},
		{"10.0.0.6", false, peerNonGlobal},
		{"172.31.255.255", false, peerNonGlobal},
		{"192.168.1.1", false, peerNonGlobal},
		{"::ffff:192.168.1.1", false, peerNonGlobal},
		{"169.254.169.254", false, peerNonGlobal},
		{"fe80::1", false, peerNonGlobal},
		{"fc00::1", false, peerNonGlobal},
		{"100.64.0.1", false, peerNonGlobal},
		{"100.127.255.254", false, peerNonGlobal},
		{"224.0.0.1", false, peerNonGlobal},
		{"239.255.255.250", false, peerNonGlobal},
		{"ff02::1", false, peerNonGlobal},
		{"255.255.255.255", false, peerNonGlobal},
		{"240.0.0.1", false, peerNonGlobal},
		{"192.0.2.1", false, peerNonGlobal},
		{"198.18.0.1", false, peerNonGlobal},
		{"64:ff9b::a00:1", false, peerNonGlobal},
		{"2002:a00:1::", false, peerNonGlobal},
		{"2001:db8::1", false, peerNonGlobal},
		{"0.1.2.3", false, peerNonGlobal},
		{"0.0.0.0", false, peerInvalid},
		{"::", false, peerInvalid},
	} {
		ok, reason := p.permitIP(netip.MustParseAddr(tc.ip))
		if ok != tc.ok || reason != tc.reason {
			t.Errorf("permitIP(%s) = %v %s, want %v %s", tc.ip, ok, reason, tc.ok, tc.reason)
		}
	}

	// Datagrams: the SFU's IP only on its ports (port 0 = all).
	for _, tc := range []struct {
		ap string
		ok bool
	}{
		{"10.0.0.5:7882", true},
		{"10.0.0.5:22", false},
		{"[fd00::5]:1234", true},
		{"8.8.8.8:53", true},
		{"10.9.0.1:53", true},
		{"192.168.1.1:53", false},
	} {
		if ok, _ := p.allowPacket(netip.MustParseAddrPort(tc.ap)); ok != tc.ok {
			t.Errorf("allowPacket(%s) = %v, want %v", tc.ap, ok, tc.ok)
		}
	}
}

func TestICEServers(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{Secret: []byte("x"), RelayIP: netip.MustParseAddr("198.51.100.7"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	cred := srv.Credentials("dave")
	if got := srv.ICEServers("example.com", cred); got != nil {
		t.Fatalf("ICE servers before Start: %+v", got)
	}
	srv.addrs = Addrs{
		UDP: netip.MustParseAddrPort("0.0.0.0:3478"),
		TCP: netip.MustParseAddrPort("0.0.0.0:3478"),
	}
	for _, tc := range []struct {
		host, public string
		want         []string
	}{
		{"meet.example.com:7880", "", []string{
			"turn:meet.example.com:3478?transport=udp", "turn:meet.example.com:3478?transport=tcp"}},
		{"[2001:db8::1]:7880", "", []string{
			"turn:[2001:db8::1]:3478?transport=udp", "turn:[2001:db8::1]:3478?transport=tcp"}},
		{"", "", []string{
			"turn:198.51.100.7:3478?transport=udp", "turn:198.51.100.7:3478?transport=tcp"}},
		{"0.0.0.0:7880", "", []string{
			"turn:198.51.100.7:3478?transport=udp", "turn:198.51.100.7:3478?transport=tcp"}},
		{"localhost:7880", "turn.example.com", []string{
			"turn:turn.example.com:3478?transport=udp", "turn:turn.example.com:3478?transport=tcp"}},
	} {
		srv.cfg.PublicHost = tc.public
		got := srv.ICEServers(tc.host, cred)
		want := []ICEServer{{URLs: tc.want, Username: cred.Username, Credential: cred.Password}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ICEServers(%q) with PublicHost %q = %+v, want %+v", tc.host, tc.public, got, want)
		}
	}
}

// External TURN mode: no listener, the configured URLs, the same
// credential scheme.
func TestExternalMode(t *testing.T) {
	t.Parallel()
	urls := []string{"turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:443?transport=tcp"}
	srv, err := New(Config{Secret: []byte("shared"), ExternalURLs: urls, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.Addrs() != (Addrs{}) || !srv.External() {
		t.Fatalf("external mode listens: %+v", srv.Addrs())
	}
	cred := srv.Credentials("erin")
	got := srv.ICEServers("meet.example.com", cred)
	if len(got) != 1 || !reflect.DeepEqual(got[0].URLs, urls) || got[0].Username != cred.Username {
		t.Fatalf("ICE servers %+v", got)
	}
	// What an external coturn with static-auth-secret=shared would check.
	key, ok := pturn.LongTermTURNRESTAuthHandler("shared", nil)(cred.Username, "any", &net.UDPAddr{})
	if !ok || !bytes.Equal(key, pturn.GenerateAuthKey(cred.Username, "any", cred.Password)) {
		t.Fatal("external server would refuse the credentials")
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"all off", Config{UDPAddr: Off, TCPAddr: Off}, "every listener is off"},
		{"half range", Config{PortMin: 50000}, "port range"},
		{"inverted range", Config{PortMin: 50010, PortMax: 50000}, "port range"},
		{"ipv6 relay", Config{RelayBindIP: netip.MustParseAddr("::1")}, "IPv4"},
		{"cert without key", Config{TLSCertFile: "c.pem"}, "TLSKeyFile"},
		{"bad addr", Config{UDPAddr: "3478"}, "listen address"},
		{"negative ttl", Config{CredentialTTL: -time.Second}, "CredentialTTL"},
		{"external without secret", Config{ExternalURLs: []string{"turn:t.example.com"}}, "Secret"},
		{"external bad url", Config{Secret: []byte("x"), ExternalURLs: []string{"https://t.example.com"}}, "not a turn:"},
	} {
		tc.cfg.Logger = testLogger(t)
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want mention of %q", tc.name, err, tc.want)
		}
	}

	srv, err := New(Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := srv.cfg
	if c.UDPAddr != ":3478" || c.TCPAddr != ":3478" || c.TLSAddr != Off || c.Realm != "huddle" ||
		c.CredentialTTL != DefaultCredentialTTL || c.MaxAllocationsPerUser != DefaultMaxAllocationsPerUser ||
		!c.RelayIP.Is4() || c.RelayIP.IsUnspecified() {
		t.Fatalf("defaults %+v", c)
	}
}

func TestQuotaReservationsExpire(t *testing.T) {
	t.Parallel()
	q := newQuota(1)
	now := time.Unix(100, 0)
	if !q.admit("u", now) {
		t.Fatal("first admit refused")
	}
	// The allocation never appeared (relay port exhausted, say).
	if q.admit("u", now.Add(time.Second)) {
		t.Fatal("admitted past the limit while a reservation is pending")
	}
	if !q.admit("u", now.Add(reservationTTL+2*time.Second)) {
		t.Fatal("stale reservation still counted")
	}
	q.created("u")
	q.deleted("u")
	if len(q.users) != 0 {
		t.Fatalf("idle user kept: %+v", q.users)
	}
	unlimited := newQuota(-1)
	for range 100 {
		if !unlimited.admit("u", now) {
			t.Fatal("unlimited quota refused")
		}
	}
}

// An SFU bound to every interface is reachable at its port on each of this
// host's addresses, and nowhere else on them.
func TestSFUOnAllInterfaces(t *testing.T) {
	t.Parallel()
	p := newPeerPolicy(nil, []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:7882")})
	p.setSelf(localAddrs())
	lo := netip.MustParseAddr("127.0.0.1")
	if ok, reason := p.allowPacket(netip.AddrPortFrom(lo, 7882)); !ok {
		t.Fatalf("SFU port on loopback refused: %s", reason)
	}
	if ok, _ := p.allowPacket(netip.AddrPortFrom(lo, 22)); ok {
		t.Fatal("other port on loopback allowed")
	}
}
