package turn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	pturn "github.com/pion/turn/v4"
)

// Addrs are the addresses the relay's listeners are bound to; a zero
// AddrPort means that listener is off.
type Addrs struct {
	UDP, TCP, TLS netip.AddrPort
}

// Server is Huddle's embedded TURN relay: pion/turn with ephemeral REST
// credentials, a per-user allocation quota and a peer-address policy that
// keeps the relay from reaching anything but the SFU and the Internet.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	policy  *peerPolicy
	quota   *quota
	now     func() time.Time // replaced in tests

	collector *collector // registered on cfg.Registerer, if any

	users sync.Map // client address string -> user, for log context

	mu        sync.Mutex
	started   bool
	closed    bool
	pion      *pturn.Server
	addrs     Addrs
	listeners []*trackingListener
	certs     *certReloader // nil unless TLS comes from files
	stop      chan struct{}
}

// New validates cfg and prepares a relay; Start binds its sockets. In
// external TURN mode (cfg.ExternalURLs set) the Server only mints
// credentials and ICE server lists.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "turn"),
		metrics: newMetrics(),
		policy:  newPeerPolicy(cfg.AllowPeers, cfg.SFUAddrs),
		quota:   newQuota(cfg.MaxAllocationsPerUser),
		now:     time.Now,
		stop:    make(chan struct{}),
	}
	if cfg.Registerer != nil {
		s.collector = newCollector(s.metrics)
		if err := cfg.Registerer.Register(s.collector); err != nil {
			return nil, fmt.Errorf("turn: register metrics: %w", err)
		}
	}
	return s, nil
}

// Start binds the listeners and starts relaying. The relay stops when ctx
// is done or Close is called. Start is a no-op in external TURN mode.
func (s *Server) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("turn: Start after Close")
	case s.started:
		return errors.New("turn: already started")
	case s.cfg.External():
		s.started = true
		s.log.Info("turn: external TURN mode, embedded relay off", "urls", s.cfg.ExternalURLs)
		return nil
	}

	tlsConfig, err := s.loadTLS()
	if err != nil {
		return err
	}

	// Close whatever was opened if a later step fails.
	var closers []io.Closer
	defer func() {
		if err != nil {
			for _, c := range closers {
				_ = c.Close()
			}
		}
	}()

	alloc := &relayAllocator{
		bindIP:    s.cfg.RelayBindIP,
		advertise: s.cfg.RelayIP,
		portMin:   s.cfg.PortMin,
		portMax:   s.cfg.PortMax,
		policy:    s.policy,
		metrics:   s.metrics,
		log:       s.log,
	}
	pcfg := pturn.ServerConfig{
		Realm:         s.cfg.Realm,
		AuthHandler:   s.authenticate,
		QuotaHandler:  s.admitAllocation,
		EventHandler:  s.eventHandler(),
		LoggerFactory: pionLoggerFactory{log: s.log},
	}

	addrs, listeners, opened, err := s.listen(&pcfg, alloc, tlsConfig)
	closers = append(closers, opened...)
	if err != nil {
		return err
	}

	// The relay must never reach this host itself (see peerPolicy.setSelf).
	self := append(localAddrs(), s.cfg.RelayIP, s.cfg.RelayBindIP,
		addrs.UDP.Addr(), addrs.TCP.Addr(), addrs.TLS.Addr())
	s.policy.setSelf(self)

	srv, err := pturn.NewServer(pcfg)
	if err != nil {
		return fmt.Errorf("turn: start pion server: %w", err)
	}
	s.pion, s.addrs, s.listeners, s.started = srv, addrs, listeners, true

	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.stop:
		}
	}()

	if len(*s.policy.sfu.Load()) == 0 {
		s.log.Warn("turn: no SFU media addresses set; relayed clients cannot reach the SFU until SetSFUAddrs")
	}
	s.log.Info("turn: relay listening",
		"udp", addrString(addrs.UDP), "tcp", addrString(addrs.TCP), "tls", addrString(addrs.TLS),
		"relay_ip", s.cfg.RelayIP.String(), "relay_ports", portRange(s.cfg.PortMin, s.cfg.PortMax),
		"realm", s.cfg.Realm, "max_allocations_per_user", s.cfg.MaxAllocationsPerUser)
	return nil
}

// listen opens the configured UDP, TCP and TLS listeners and adds them to
// pcfg, relaying through alloc. What it opened is returned for the caller
// to close, on an error too.
func (s *Server) listen(pcfg *pturn.ServerConfig, alloc *relayAllocator, tlsConfig *tls.Config) (addrs Addrs, listeners []*trackingListener, closers []io.Closer, err error) {
	if s.cfg.UDPAddr != Off {
		pc, err := net.ListenPacket("udp", s.cfg.UDPAddr)
		if err != nil {
			return addrs, nil, closers, fmt.Errorf("turn: listen UDP %s: %w", s.cfg.UDPAddr, err)
		}
		closers = append(closers, pc)
		addrs.UDP = addrPort(pc.LocalAddr())
		pcfg.PacketConnConfigs = append(pcfg.PacketConnConfigs, pturn.PacketConnConfig{
			PacketConn:            pc,
			RelayAddressGenerator: alloc,
			PermissionHandler:     s.permit,
		})
	}
	for _, l := range []struct {
		addr string
		tls  *tls.Config
		dst  *netip.AddrPort
	}{
		{s.cfg.TCPAddr, nil, &addrs.TCP},
		{s.cfg.TLSAddr, tlsConfig, &addrs.TLS},
	} {
		if l.addr == Off {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return addrs, listeners, closers, fmt.Errorf("turn: listen TCP %s: %w", l.addr, err)
		}
		closers = append(closers, ln)
		*l.dst = tcpAddrPort(ln.Addr())
		tl := newTrackingListener(ln, l.tls)
		listeners = append(listeners, tl)
		pcfg.ListenerConfigs = append(pcfg.ListenerConfigs, pturn.ListenerConfig{
			Listener:              tl,
			RelayAddressGenerator: alloc,
			PermissionHandler:     s.permit,
		})
	}
	return addrs, listeners, closers, nil
}

// loadTLS returns the TLS configuration, or nil when TLS is off.
func (s *Server) loadTLS() (*tls.Config, error) {
	if s.cfg.TLSAddr == Off {
		return nil, nil
	}
	if s.cfg.TLSConfig != nil {
		return s.cfg.TLSConfig.Clone(), nil
	}
	certs, err := newCertReloader(s.cfg.TLSCertFile, s.cfg.TLSKeyFile, s.log)
	if err != nil {
		return nil, err
	}
	s.certs = certs
	return &tls.Config{GetCertificate: certs.getCertificate, MinVersion: tls.VersionTLS12}, nil
}

// Close stops the relay: listeners, TCP/TLS connections and, through
// pion/turn, every allocation. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stop)
	if s.collector != nil {
		// Lets a new Server register on the same registry.
		s.cfg.Registerer.Unregister(s.collector)
	}
	var err error
	if s.pion != nil {
		if cerr := s.pion.Close(); cerr != nil {
			err = fmt.Errorf("turn: close: %w", cerr)
		}
	}
	for _, l := range s.listeners {
		l.closeConns()
	}
	if s.started && !s.cfg.External() {
		s.log.Info("turn: relay stopped")
	}
	return err
}

// Addrs reports the bound listener addresses (zero before Start and in
// external mode).
func (s *Server) Addrs() Addrs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs
}

// External reports whether the Server runs in external TURN mode.
func (s *Server) External() bool { return s.cfg.External() }

// Realm is the TURN realm in use.
func (s *Server) Realm() string { return s.cfg.Realm }

// Credentials mints TURN REST credentials for user, valid for
// Config.CredentialTTL. user is the participant identity; the allocation
// quota is counted per user.
func (s *Server) Credentials(user string) Credentials {
	return MintCredentials(s.cfg.Secret, user, s.cfg.CredentialTTL, s.now())
}

// ICEServers returns the ICE server list to hand a client with cred (see
// Credentials). host is the host the client used to reach Huddle (an HTTP
// Host header is fine, a port is ignored); Config.PublicHost overrides it,
// and RelayIP is the fallback. It returns nil before Start.
func (s *Server) ICEServers(host string, cred Credentials) []ICEServer {
	var urls []string
	if s.cfg.External() {
		urls = append(urls, s.cfg.ExternalURLs...)
	} else {
		h := s.cfg.PublicHost
		if !usableHost(h) {
			h = hostOnly(host)
		}
		if !usableHost(h) {
			h = s.cfg.RelayIP.String()
		}
		urls = iceURLs(h, s.Addrs())
	}
	if len(urls) == 0 {
		return nil
	}
	return []ICEServer{{URLs: urls, Username: cred.Username, Credential: cred.Password}}
}

// SetSFUAddrs replaces the SFU's media addresses, the peers always allowed.
// Port 0 allows every port of that IP. Safe to call at any time; existing
// permissions are re-judged datagram by datagram.
func (s *Server) SetSFUAddrs(addrs []netip.AddrPort) {
	s.policy.setSFU(addrs)
	s.log.Info("turn: SFU media addresses set", "addrs", addrs)
}

// Stats returns a snapshot of the relay's counters.
func (s *Server) Stats() Stats { return s.metrics.snapshot() }

// authenticate is pion's AuthHandler: it returns the long-term key for a
// valid TURN REST username, and pion checks MESSAGE-INTEGRITY with it.
// Refusing here (expired, malformed, missing) makes pion answer 400.
func (s *Server) authenticate(username, realm string, src net.Addr) ([]byte, bool) {
	_, _, reason := parseUsername(username, s.now())
	if reason == "" && realm != s.cfg.Realm {
		reason = authWrongRealm
	}
	if reason != "" {
		s.authFailed(reason, username, src)
		return nil, false
	}
	return longTermKey(username, realm, restPassword(s.cfg.Secret, username)), true
}

func (s *Server) authFailed(reason, username string, src net.Addr) {
	s.metrics.inc(s.metrics.authFail, reason)
	s.log.Info("turn: credentials refused", "reason", reason, "username", username, "client", addrText(src))
}

// admitAllocation is pion's QuotaHandler.
func (s *Server) admitAllocation(username, _ string, src net.Addr) bool {
	user := quotaUser(username)
	if s.quota.admit(user, s.now()) {
		return true
	}
	s.metrics.refusedQuota.Add(1)
	s.log.Info("turn: allocation refused, quota reached",
		"user", user, "client", addrText(src), "limit", s.cfg.MaxAllocationsPerUser)
	return false
}

// permit is pion's PermissionHandler, asked for every CreatePermission and
// ChannelBind.
func (s *Server) permit(client net.Addr, peerIP net.IP) bool {
	ok, reason := s.policy.permitIP(ipFromNet(peerIP))
	if !ok {
		s.metrics.inc(s.metrics.permRefused, reason)
		s.log.Info("turn: peer refused", "reason", reason, "peer", peerIP.String(),
			"client", addrText(client), "user", s.userOf(client))
	}
	return ok
}

func (s *Server) userOf(client net.Addr) string {
	if u, ok := s.users.Load(addrText(client)); ok {
		return u.(string)
	}
	return ""
}

// eventHandler keeps the quota, the metrics and the logs in step with
// pion's allocation lifecycle.
func (s *Server) eventHandler() pturn.EventHandler {
	return pturn.EventHandler{
		OnAuth: func(src, _ net.Addr, _, username, _, method string, verdict bool) {
			// pion reports here only when our key did not verify the
			// MESSAGE-INTEGRITY: the username was fine, the password not.
			if !verdict {
				s.authFailed(authBadPassword, username, src)
			}
		},
		OnAllocationCreated: func(src, _ net.Addr, protocol, username, _ string, relay net.Addr, _ int) {
			user := quotaUser(username)
			s.quota.created(user)
			s.users.Store(addrText(src), user)
			s.metrics.created.Add(1)
			s.metrics.active.Add(1)
			s.log.Info("turn: allocation created", "user", user, "client", addrText(src),
				"transport", protocol, "relay", addrText(relay))
		},
		OnAllocationDeleted: func(src, _ net.Addr, protocol, username, _ string) {
			user := quotaUser(username)
			s.quota.deleted(user)
			s.users.Delete(addrText(src))
			s.metrics.active.Add(-1)
			s.log.Info("turn: allocation deleted", "user", user, "client", addrText(src), "transport", protocol)
		},
		OnPermissionCreated: func(src, _ net.Addr, _, username, _ string, relay net.Addr, peer net.IP) {
			s.log.Debug("turn: permission created", "user", quotaUser(username), "client", addrText(src),
				"relay", addrText(relay), "peer", peer.String())
		},
		OnChannelCreated: func(src, _ net.Addr, _, username, _ string, relay, peer net.Addr, ch uint16) {
			s.log.Debug("turn: channel bound", "user", quotaUser(username), "client", addrText(src),
				"relay", addrText(relay), "peer", addrText(peer), "channel", ch)
		},
	}
}

func addrText(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return "off"
	}
	return a.String()
}

func portRange(lo, hi uint16) string {
	if lo == 0 {
		return "any"
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}

func tcpAddrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
