package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/huddle-rtc/huddle/turn"
)

// turnFlags are serve's flags for the embedded TURN relay.
type turnFlags struct {
	mode, udp, tcp, tls, cert, key, secret, publicHost, relayIP, bindIP, ports, external, allow, maxAllocs *string
}

func addTURNFlags(f envFlags) *turnFlags {
	return &turnFlags{
		mode:       f.String("turn", "on", `"on" (embedded relay), "off", or "external" (see --turn-external-urls)`),
		udp:        f.String("turn-udp-addr", turn.DefaultAddr, `TURN over UDP, or "off"`),
		tcp:        f.String("turn-tcp-addr", turn.DefaultAddr, `TURN over TCP, or "off"`),
		tls:        f.String("turn-tls-addr", fmt.Sprintf(":%d", turn.DefaultTLSPort), "TURN over TLS; used only with --turn-cert and --turn-key"),
		cert:       f.String("turn-cert", "", "TLS certificate file for turns:"),
		key:        f.String("turn-key", "", "TLS key file for turns:"),
		secret:     f.String("turn-secret", "", "shared secret of the TURN REST credentials (default: random per start)"),
		publicHost: f.String("turn-public-host", "", "host name put in TURN URLs (default: the host clients used to reach the page)"),
		relayIP:    f.String("turn-relay-ip", "", "address advertised in relay candidates (public IP behind 1:1 NAT)"),
		bindIP:     f.String("turn-relay-bind-ip", "", "local address relay sockets bind to (default all)"),
		ports:      f.String("turn-relay-ports", "", "relay port range, e.g. 49152-65535 (default: any)"),
		external:   f.String("turn-external-urls", "", "comma-separated turn: URLs of an external TURN sharing --turn-secret"),
		allow:      f.String("turn-allow-peers", "", "comma-separated CIDRs the relay may reach besides public addresses and the SFU"),
		maxAllocs:  f.String("turn-max-allocations", "", "allocations per participant identity (default 32)"),
	}
}

// config turns the flags into a relay configuration; nil means no relay.
func (t *turnFlags) config() (*turn.Config, error) {
	cfg := &turn.Config{
		UDPAddr: *t.udp, TCPAddr: *t.tcp, TLSAddr: *t.tls,
		TLSCertFile: *t.cert, TLSKeyFile: *t.key,
		Secret:     []byte(*t.secret),
		PublicHost: *t.publicHost,
	}
	switch *t.mode {
	case "off":
		return nil, nil
	case "on":
	case "external":
		cfg.ExternalURLs = list(*t.external)
		if len(cfg.ExternalURLs) == 0 || *t.secret == "" {
			return nil, fmt.Errorf("--turn=external needs --turn-external-urls and --turn-secret")
		}
	default:
		return nil, fmt.Errorf("--turn %q: want on, off or external", *t.mode)
	}
	var err error
	if *t.relayIP != "" {
		if cfg.RelayIP, err = netip.ParseAddr(*t.relayIP); err != nil {
			return nil, fmt.Errorf("--turn-relay-ip: %w", err)
		}
	}
	if *t.bindIP != "" {
		if cfg.RelayBindIP, err = netip.ParseAddr(*t.bindIP); err != nil {
			return nil, fmt.Errorf("--turn-relay-bind-ip: %w", err)
		}
	}
	if *t.ports != "" {
		lo, hi, ok := strings.Cut(*t.ports, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := strconv.ParseUint(hi, 10, 16)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("--turn-relay-ports %q: want MIN-MAX", *t.ports)
		}
		cfg.PortMin, cfg.PortMax = uint16(a), uint16(b)
	}
	for _, c := range list(*t.allow) {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("--turn-allow-peers: %w", err)
		}
		cfg.AllowPeers = append(cfg.AllowPeers, p)
	}
	if *t.maxAllocs != "" {
		n, err := strconv.Atoi(*t.maxAllocs)
		if err != nil {
			return nil, fmt.Errorf("--turn-max-allocations: %w", err)
		}
		cfg.MaxAllocationsPerUser = n
	}
	return cfg, nil
}
