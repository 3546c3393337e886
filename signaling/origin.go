package signaling

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// CheckHost guards the WebSocket and the dev-token endpoint against other
// web sites. A page on another origin may not use them (Origin must be the
// page's own origin or an allowed one), and in dev mode the Host must be a
// localhost name or an IP address: a DNS-rebound name (evil.example
// resolving to 127.0.0.1) makes the browser send a matching Host and
// Origin, so only the Host check stops it.
func (s *Server) CheckHost(r *http.Request) error {
	host := hostOnly(r.Host)
	if s.cfg.DevMode && !localHost(host) {
		return fmt.Errorf("dev mode answers only localhost names and IP addresses, not %q", host)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil // not a browser page (bots, curl)
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("malformed Origin %q", origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil // the page's own origin
	}
	for _, o := range s.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return nil
		}
	}
	return fmt.Errorf("origin %q is not allowed (configure it with --allowed-origins)", origin)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func localHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	return net.ParseIP(host) != nil // an address cannot be rebound
}

// joinLimiter bounds new connections per remote address with a token
// bucket each. Its table is bounded: when full, buckets that are full
// again (idle addresses) are forgotten.
type joinLimiter struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	addrs map[string]*rate.Limiter
}

const maxLimitedAddrs = 1 << 16

func newJoinLimiter(perSecond float64, burst int) *joinLimiter {
	if perSecond < 0 {
		return nil
	}
	return &joinLimiter{rate: rate.Limit(perSecond), burst: burst, addrs: map[string]*rate.Limiter{}}
}

func (l *joinLimiter) allow(addr string) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.addrs[addr]
	if lim == nil {
		if len(l.addrs) >= maxLimitedAddrs {
			t := time.Now()
			for a, b := range l.addrs {
				if b.TokensAt(t) >= float64(l.burst) {
					delete(l.addrs, a)
				}
			}
			if len(l.addrs) >= maxLimitedAddrs {
				return false
			}
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.addrs[addr] = lim
	}
	return lim.Allow()
}
