package webhook

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes the endpoints and the delivery policy.
type Config struct {
	URLs   []string // each endpoint gets every event
	Key    string   // the API key named in HeaderKey
	Secret string   // its secret, which signs
	// QueueLen bounds the events waiting per endpoint; past it the
	// oldest is dropped (and counted): a receiver that is down for days
	// must not grow the server. Default 10000.
	QueueLen int
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles from MinBackoff with jitter; defaults 1s and 1m.
	MinBackoff, MaxBackoff time.Duration
	Timeout                time.Duration // per attempt; default 10s
	Logger                 *slog.Logger
}

// Notifier delivers events to the configured endpoints, one worker per
// endpoint. Enqueue never blocks.
type Notifier struct {
	cfg     Config
	client  *http.Client
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	targets []*target
}

// Stats are the delivery counters of all endpoints.
type Stats struct {
	Delivered, Failed, Dropped uint64 // acknowledged deliveries, failed attempts, events dropped from a full queue
	Queued                     int
}

type target struct {
	url     string
	wake    chan struct{} // capacity 1: "the queue has something"
	mu      sync.Mutex
	queue   []item
	dropped atomic.Uint64
	failed  atomic.Uint64
	done    atomic.Uint64
}

type item struct {
	id   string
	body []byte
}

// New starts a worker per URL; Close stops them.
func New(cfg Config) *Notifier {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 10000
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(time.Minute, cfg.MinBackoff)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Notifier{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, u := range cfg.URLs {
		t := &target{url: u, wake: make(chan struct{}, 1)}
		n.targets = append(n.targets, t)
		n.wg.Add(1)
		go n.run(t)
	}
	return n
}

// Enqueue queues one event (its id and JSON body) for every endpoint.
func (n *Notifier) Enqueue(id string, body []byte) {
	for _, t := range n.targets {
		t.mu.Lock()
		if len(t.queue) >= n.cfg.QueueLen {
			t.queue[0] = item{}
			t.queue = t.queue[1:]
			if t.dropped.Add(1)%1000 == 1 {
				n.cfg.Logger.Warn("webhook queue full: dropping the oldest events", "url", t.url, "dropped", t.dropped.Load())
			}
		}
		t.queue = append(t.queue, item{id: id, body: body})
		t.mu.Unlock()
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// Stats sums the endpoints' counters.
func (n *Notifier) Stats() Stats {
	var s Stats
	for _, t := range n.targets {
		s.Delivered += t.done.Load()
		s.Failed += t.failed.Load()
		s.Dropped += t.dropped.Load()
		t.mu.Lock()
		s.Queued += len(t.queue)
		t.mu.Unlock()
	}
	return s
}

// Close stops the workers (an attempt in flight is cancelled) and waits
// for them. Events still queued are lost.
func (n *Notifier) Close() {
	n.cancel()
	n.wg.Wait()
}

// run delivers t's queue in order: the head is retried until it is
// acknowledged (or dropped by an overflowing queue), then removed.
func (n *Notifier) run(t *target) {
	defer n.wg.Done()
	backoff := n.cfg.MinBackoff
	for {
		t.mu.Lock()
		var head item
		if len(t.queue) > 0 {
			head = t.queue[0]
		}
		t.mu.Unlock()
		if head.body == nil {
			select {
			case <-n.ctx.Done():
				return
			case <-t.wake:
			}
			continue
		}
		err := n.post(t.url, head)
		if err == nil {
			t.done.Add(1)
			t.mu.Lock()
			if len(t.queue) > 0 && t.queue[0].id == head.id {
				t.queue[0] = item{}
				t.queue = t.queue[1:]
			}
			t.mu.Unlock()
			backoff = n.cfg.MinBackoff
			continue
		}
		if n.ctx.Err() != nil {
			return
		}
		t.failed.Add(1)
		wait := backoff/2 + rand.N(backoff/2+1)
		n.cfg.Logger.Debug("webhook delivery failed; retrying", "url", t.url, "event", head.id, "err", err, "in", wait)
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, n.cfg.MaxBackoff)
	}
}

func (n *Notifier) post(url string, it item) error {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, url, bytes.NewReader(it.body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderID, it.id)
	req.Header.Set(HeaderTimestamp, fmt.Sprint(ts))
	req.Header.Set(HeaderSignature, Sign(n.cfg.Secret, ts, it.body))
	req.Header.Set(HeaderKey, n.cfg.Key)
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return fmt.Errorf("webhook %s: status %d", url, resp.StatusCode)
	}
	return nil
}
