package turn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	pturn "github.com/pion/turn/v4"
)

// TURN over TCP allocates and relays like UDP.
func TestTCP(t *testing.T) {
	t.Parallel()
	sfu := listenPeer(t, sfuHost)
	srv := startServer(t, []netip.AddrPort{sfu.addr()}, nil)
	conn, err := net.Dial("tcp", srv.Addrs().TCP.String())
	if err != nil {
		t.Fatal(err)
	}
	c := newClientOn(t, pturn.NewSTUNConn(conn), srv.Addrs().TCP.String(), srv.Credentials("alice"))
	relayAndCheck(t, c.allocate(t), sfu)
}

// With a certificate configured, a turns: client allocates over TLS.
func TestTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	sfu := listenPeer(t, sfuHost)
	srv := startServer(t, []netip.AddrPort{sfu.addr()}, func(c *Config) {
		c.TLSAddr = "127.0.0.1:0"
		c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
	})
	tlsAddr := srv.Addrs().TLS
	if !tlsAddr.IsValid() {
		t.Fatal("TLS listener not started")
	}
	conn, err := tls.Dial("tcp", tlsAddr.String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	c := newClientOn(t, pturn.NewSTUNConn(conn), tlsAddr.String(), srv.Credentials("alice"))
	relayAndCheck(t, c.allocate(t), sfu)

	ice := srv.ICEServers("huddle.test", srv.Credentials("alice"))
	want := fmt.Sprintf("turns:huddle.test:%d?transport=tcp", tlsAddr.Port())
	if len(ice) != 1 || !contains(ice[0].URLs, want) {
		t.Fatalf("ICE servers %+v lack %s", ice, want)
	}
}

// A renewed certificate file is served without a restart.
func TestTLSCertificateReload(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	srv := startServer(t, nil, func(c *Config) {
		c.TLSAddr = "127.0.0.1:0"
		c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
	})
	serial := func(pool *x509.CertPool) *big.Int {
		t.Helper()
		conn, err := tls.Dial("tcp", srv.Addrs().TLS.String(),
			&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("TLS dial: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	first := serial(pool)

	// Renew: new files in place, with a later modification time.
	newCert, newKey, newPool := selfSigned(t)
	for _, f := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		data, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], data, 0o600); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(f[1], later, later); err != nil {
			t.Fatal(err)
		}
	}
	srv.certs.mu.Lock()
	srv.certs.checked = time.Time{} // as if the check interval had passed
	srv.certs.mu.Unlock()
	if second := serial(newPool); second.Cmp(first) == 0 {
		t.Fatal("old certificate still served after renewal")
	}
}

// A stream client that has sent nothing (as one stuck in a handshake) loses its
// connection when the server closes.
func TestCloseEndsStreamConnections(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil, nil)
	conn, err := net.Dial("tcp", srv.Addrs().TCP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Make sure the server has accepted it before closing.
	waitFor(t, "connection to be tracked", 5*time.Second, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		l := srv.listeners[0]
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.conns) == 1
	})
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("connection still open after Close: %v", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to files.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(t),
		Subject:      pkix.Name{CommonName: "huddle test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

func serialNumber(t *testing.T) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
