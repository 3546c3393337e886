package turn

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts for TURN over TCP and TLS. pion/turn reads a stream connection
// with no deadline, so without these an idle or half-open connection would
// hold a goroutine and a file descriptor forever.
const (
	// firstByteTimeout bounds the wait for a new connection's first bytes,
	// which include the TLS handshake.
	firstByteTimeout = 30 * time.Second
	// idleTimeout bounds silence on an established connection. A client
	// refreshes its allocation every ~9 minutes and its permissions every
	// ~4, even with no media flowing, so 15 minutes only cuts dead peers.
	idleTimeout = 15 * time.Minute
)

// writeTimeout bounds a single write: a client that stops reading must not
// stall the goroutine relaying to it forever.
const writeTimeout = 10 * time.Second

// trackingListener wraps a TCP listener: it puts deadlines on every accepted
// connection and remembers it, so that Close can end connections pion/turn
// would otherwise leave open after its listener closes.
type trackingListener struct {
	net.Listener
	// tlsConfig, when set, makes Accept return TLS server connections.
	tlsConfig *tls.Config
	// Timeouts, from the constants above (shortened in tests).
	firstByte, idle, write time.Duration

	mu     sync.Mutex
	conns  map[*deadlineConn]struct{}
	closed bool
}

func newTrackingListener(l net.Listener, tlsConfig *tls.Config) *trackingListener {
	return &trackingListener{
		Listener: l, tlsConfig: tlsConfig, conns: map[*deadlineConn]struct{}{},
		firstByte: firstByteTimeout, idle: idleTimeout, write: writeTimeout,
	}
}

// Accept returns the next connection without blocking on its TLS
// handshake: pion/turn serves each connection on its own goroutine, where
// the first Read runs the handshake under the first-byte deadline.
func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	dc := &deadlineConn{Conn: c, owner: l, acceptedAt: time.Now()}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[dc] = struct{}{}
	l.mu.Unlock()
	if l.tlsConfig == nil {
		dc.markOnRead = true
		return dc, nil
	}
	return &startedConn{Conn: tls.Server(dc, l.tlsConfig), dc: dc}, nil
}

// closeConns closes every accepted connection and refuses new ones.
func (l *trackingListener) closeConns() {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[*deadlineConn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
}

func (l *trackingListener) forget(c *deadlineConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// deadlineConn is the TCP connection under TURN (and under TLS). Until the
// client has sent its first TURN bytes, reads share one fixed deadline
// counted from accept, so a client that trickles a TLS handshake cannot
// hold the connection; afterwards each read may wait idleTimeout.
type deadlineConn struct {
	net.Conn
	owner      *trackingListener
	acceptedAt time.Time
	markOnRead bool // plain TCP: the first bytes read are TURN bytes
	started    atomic.Bool
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	deadline := c.acceptedAt.Add(c.owner.firstByte)
	if c.started.Load() {
		deadline = time.Now().Add(c.owner.idle)
	}
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.markOnRead {
		c.started.Store(true)
	}
	return n, err
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.owner.write)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *deadlineConn) Close() error {
	c.owner.forget(c)
	return c.Conn.Close()
}

// startedConn is a TLS connection that marks its TCP connection as started
// once decrypted TURN bytes arrive, i.e. after the handshake.
type startedConn struct {
	net.Conn
	dc *deadlineConn
}

func (c *startedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.dc.started.Store(true)
	}
	return n, err
}
