package turn

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often the certificate files are checked for a
// renewal (certbot, cert-manager), so that turns: keeps working across
// renewals without a restart.
const certCheckInterval = time.Minute

// certReloader serves the certificate in certFile/keyFile and reloads it
// when either file's modification time changes.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu              sync.Mutex
	cert            *tls.Certificate
	certMod, keyMod time.Time
	checked         time.Time
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	r.checked = time.Now()
	return r, nil
}

// load reads both files; on error the previous certificate stays in use.
func (r *certReloader) load() error {
	certMod, keyMod, err := r.modTimes()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("turn: load TLS certificate %s: %w", r.certFile, err)
	}
	r.cert, r.certMod, r.keyMod = &cert, certMod, keyMod
	return nil
}

func (r *certReloader) modTimes() (certMod, keyMod time.Time, err error) {
	ci, err := os.Stat(r.certFile)
	if err != nil {
		return certMod, keyMod, fmt.Errorf("turn: TLS certificate: %w", err)
	}
	ki, err := os.Stat(r.keyFile)
	if err != nil {
		return certMod, keyMod, fmt.Errorf("turn: TLS key: %w", err)
	}
	return ci.ModTime(), ki.ModTime(), nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= certCheckInterval {
		r.checked = time.Now()
		certMod, keyMod, err := r.modTimes()
		switch {
		case err != nil:
			r.log.Warn("turn: cannot check TLS certificate, keeping the loaded one", "err", err)
		case !certMod.Equal(r.certMod) || !keyMod.Equal(r.keyMod):
			if err := r.load(); err != nil {
				r.log.Warn("turn: TLS certificate changed but does not load, keeping the old one", "err", err)
			} else {
				r.log.Info("turn: TLS certificate reloaded", "file", r.certFile)
			}
		}
	}
	return r.cert, nil
}
