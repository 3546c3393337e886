package turn

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults used when the corresponding Config field is zero. They are chosen
// so that `huddle serve` works with no TURN configuration at all.
const (
	DefaultRealm   = "huddle"
	DefaultPort    = 3478
	DefaultTLSPort = 5349

	// DefaultCredentialTTL is how long minted credentials stay valid. TURN
	// re-authenticates every Refresh, CreatePermission and ChannelBind with
	// the same username, so a credential that expires mid-meeting kills the
	// relay for that participant: the TTL must outlive the longest meeting.
	// A day is what the TURN REST draft and coturn deployments use.
	DefaultCredentialTTL = 24 * time.Hour

	// DefaultMaxAllocationsPerUser bounds allocations per participant. A
	// browser allocates once per (PeerConnection x TURN URL x local
	// interface): Huddle's 2 PCs x 3 URLs x a few interfaces, plus stale
	// allocations from a reconnect that live until their lifetime ends.
	DefaultMaxAllocationsPerUser = 32
)

// Config configures the embedded TURN relay. The zero value is usable: it
// relays on :3478 UDP and TCP with a random secret (fine for a single
// process, which mints its own credentials).
type Config struct {
	// Realm is the TURN realm sent to clients. Default "huddle".
	Realm string

	// Secret is the shared secret of the TURN REST scheme (coturn
	// use-auth-secret / static-auth-secret). Empty means a random secret is
	// generated at New: credentials then only work against this process.
	Secret []byte

	// ExternalURLs switches to external TURN mode: the embedded relay stays
	// off and ICEServers hands out these URLs (e.g.
	// "turn:turn.example.com:3478?transport=udp") with credentials minted
	// from Secret, which must then equal the external server's secret.
	ExternalURLs []string

	// UDPAddr and TCPAddr are the listen addresses for TURN over UDP and
	// TCP. Empty means DefaultAddr (":3478"); "off" disables the listener.
	// Port 0 picks a free port (see Server.Addrs).
	UDPAddr string
	TCPAddr string

	// TLSAddr is the listen address for TURN over TLS (turns:). It is used
	// only when a certificate is configured (TLSConfig or TLSCertFile and
	// TLSKeyFile); empty then means ":5349".
	TLSAddr     string
	TLSConfig   *tls.Config
	TLSCertFile string
	TLSKeyFile  string

	// PublicHost is the host name or address put into ICE server URLs. It
	// must match the TLS certificate when TLS is on. Empty means the host
	// the client used to reach Huddle (the argument of ICEServers), then
	// RelayIP.
	PublicHost string

	// RelayIP is the address advertised in relay candidates (the
	// XOR-RELAYED-ADDRESS). Set it to the public address of a server behind
	// a 1:1 NAT. Default: RelayBindIP when that is a concrete address,
	// otherwise the first global (then private, then loopback) IPv4 address
	// of this host. The relay is IPv4 only (a pion/turn v4 limit).
	RelayIP netip.Addr

	// RelayBindIP is the local address relay sockets bind to. Default
	// 0.0.0.0.
	RelayBindIP netip.Addr

	// PortMin and PortMax bound the relay ports (inclusive). Both zero means
	// any free port chosen by the kernel.
	PortMin, PortMax uint16

	// MaxAllocationsPerUser is the allocation quota per user (the part of
	// the TURN username after "<expiry>:"). Zero means
	// DefaultMaxAllocationsPerUser; negative means unlimited.
	MaxAllocationsPerUser int

	// CredentialTTL is the lifetime of credentials minted by Credentials.
	// Zero means DefaultCredentialTTL.
	CredentialTTL time.Duration

	// AllowPeers lists peer networks the relay may send to even though the
	// default policy refuses them (for example an SFU on a private network
	// behind the relay). Every port of these networks is reachable.
	AllowPeers []netip.Prefix

	// SFUAddrs are the SFU's own media addresses. Their IPs are always
	// allowed as peers, but only on the listed ports (port 0 means every
	// port of that IP). Replace them at run time with Server.SetSFUAddrs.
	SFUAddrs []netip.AddrPort

	// Logger receives the relay's logs. Default slog.Default().
	Logger *slog.Logger

	// Registerer, when set, gets the relay's Prometheus metrics (see
	// Stats for the names). Nil registers nothing; pass
	// prometheus.DefaultRegisterer to use the global registry.
	Registerer prometheus.Registerer
}

// DefaultAddr is the listen address used when UDPAddr or TCPAddr is empty.
const DefaultAddr = ":3478"

// Off disables a listener when used as UDPAddr, TCPAddr or TLSAddr.
const Off = "off"

// External reports whether the config selects external TURN mode.
func (c *Config) External() bool { return len(c.ExternalURLs) > 0 }

// tlsEnabled reports whether a TLS listener is configured.
func (c *Config) tlsEnabled() bool {
	return c.TLSAddr != Off && (c.TLSConfig != nil || c.TLSCertFile != "" || c.TLSKeyFile != "")
}

// withDefaults validates c and returns a copy with every default filled in:
// one short check or default per setting, in Config's order, hence long.
func (c Config) withDefaults() (Config, error) {
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.External() {
		if len(c.Secret) == 0 {
			return c, errors.New("turn: external TURN needs the Secret the external server shares")
		}
		for _, u := range c.ExternalURLs {
			if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") && !strings.HasPrefix(u, "stun:") {
				return c, fmt.Errorf("turn: external URL %q is not a turn:, turns: or stun: URL", u)
			}
		}
	}
	if len(c.Secret) == 0 {
		c.Secret = make([]byte, 32)
		if _, err := rand.Read(c.Secret); err != nil {
			return c, fmt.Errorf("turn: generate secret: %w", err)
		}
	}
	if c.CredentialTTL == 0 {
		c.CredentialTTL = DefaultCredentialTTL
	}
	if c.CredentialTTL < 0 {
		return c, fmt.Errorf("turn: negative CredentialTTL %v", c.CredentialTTL)
	}
	if c.MaxAllocationsPerUser == 0 {
		c.MaxAllocationsPerUser = DefaultMaxAllocationsPerUser
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.External() {
		// Nothing below concerns a relay that does not run here.
		return c, nil
	}

	if c.UDPAddr == "" {
		c.UDPAddr = DefaultAddr
	}
	if c.TCPAddr == "" {
		c.TCPAddr = DefaultAddr
	}
	if c.tlsEnabled() {
		if c.TLSConfig == nil && (c.TLSCertFile == "" || c.TLSKeyFile == "") {
			return c, errors.New("turn: TLS needs both TLSCertFile and TLSKeyFile")
		}
		if c.TLSAddr == "" {
			c.TLSAddr = fmt.Sprintf(":%d", DefaultTLSPort)
		}
	} else {
		c.TLSAddr = Off
	}
	if c.UDPAddr == Off && c.TCPAddr == Off && c.TLSAddr == Off {
		return c, errors.New("turn: every listener is off; use ExternalURLs for external TURN")
	}
	for _, a := range []string{c.UDPAddr, c.TCPAddr, c.TLSAddr} {
		if a == Off {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return c, fmt.Errorf("turn: listen address %q: %w", a, err)
		}
	}

	if (c.PortMin == 0) != (c.PortMax == 0) || c.PortMin > c.PortMax {
		return c, fmt.Errorf("turn: bad relay port range %d-%d", c.PortMin, c.PortMax)
	}

	if !c.RelayBindIP.IsValid() {
		c.RelayBindIP = netip.IPv4Unspecified()
	}
	if !c.RelayBindIP.Unmap().Is4() {
		return c, fmt.Errorf("turn: RelayBindIP %v is not IPv4 (pion/turn v4 relays over udp4 only)", c.RelayBindIP)
	}
	c.RelayBindIP = c.RelayBindIP.Unmap()
	if !c.RelayIP.IsValid() {
		if c.RelayBindIP.IsUnspecified() {
			c.RelayIP = guessRelayIP()
		} else {
			c.RelayIP = c.RelayBindIP
		}
	}
	if !c.RelayIP.Unmap().Is4() || c.RelayIP.IsUnspecified() {
		return c, fmt.Errorf("turn: RelayIP %v must be a concrete IPv4 address", c.RelayIP)
	}
	c.RelayIP = c.RelayIP.Unmap()
	return c, nil
}

// guessRelayIP picks the address advertised in relay candidates when none is
// configured: a global IPv4 address if the host has one, else a private one
// (a LAN deployment), else loopback (a laptop). It only reads the interface
// table; it sends nothing.
func guessRelayIP() netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	var private netip.Addr
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr().Unmap()
		switch {
		case !ip.Is4() || ip.IsLoopback() || ip.IsLinkLocalUnicast():
		case isNonGlobal(ip):
			if ip.IsPrivate() && !private.IsValid() {
				private = ip
			}
		default:
			return ip
		}
	}
	if private.IsValid() {
		return private
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}
