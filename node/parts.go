package node

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/datachannel"
	"github.com/huddle-rtc/huddle/sfu"
	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/turn"
	"github.com/huddle-rtc/huddle/webhook"
)

// This file opens and closes the node's parts other than the rooms:
// documents, TURN, webhooks, and their metrics.

// startDocs opens the document store in the data directory, the document
// service and the data-channel hub.
func (n *Node) startDocs() error {
	var store collab.Store
	switch {
	case n.cfg.DocStore != nil:
		store = n.cfg.DocStore
	case n.rdb != nil:
		// Cluster mode: every write checks in Redis that this node still
		// holds the room at its epoch.
		store = collab.NewRedisStore(n.rdb, collab.RedisStoreOptions{Fence: n.fence})
	default:
		bolt, err := collab.OpenBoltStore(filepath.Join(n.cfg.DataDir, "docs"), 0)
		if err != nil {
			return fmt.Errorf("start documents: %w", err)
		}
		store = bolt
	}
	svc, err := collab.NewService(collab.Config{Store: store, Logger: n.log.With("part", "collab"), OnDocChange: n.docChanged, OnCommit: n.metrics.docCommitted})
	if err != nil {
		store.Close()
		return fmt.Errorf("start documents: %w", err)
	}
	n.docStore, n.docs = store, svc
	n.hub = datachannel.NewHub(svc, n.log.With("part", "datachannel"))
	return nil
}

// openChat opens the chat store: the data directory's, or Redis in
// cluster mode (fenced like the documents).
func (n *Node) openChat() (err error) {
	if n.cfg.ChatStore != nil {
		n.chat = n.cfg.ChatStore
		return nil
	}
	if n.rdb != nil {
		n.chat = signaling.NewRedisChatStore(n.rdb, signaling.RedisChatOptions{Fence: n.fence})
		return nil
	}
	n.chat, err = signaling.OpenBoltChatStore(filepath.Join(n.cfg.DataDir, "chat.db"))
	return err
}

// closeDocs stops the hub, then the service (every acked op is durable),
// then the store. It runs after the sessions have ended.
func (n *Node) closeDocs() {
	if n.hub != nil {
		n.hub.Close()
	}
	if n.docs != nil {
		_ = n.docs.Close()
	}
	if n.docStore != nil && n.docStore != n.cfg.DocStore { // the caller's is not ours to close
		if err := n.docStore.Close(); err != nil {
			n.log.Warn("close document store", "err", err)
		}
	}
}

func (n *Node) hubStats() datachannel.Stats {
	if n.hub == nil {
		return datachannel.Stats{}
	}
	return n.hub.Stats()
}

// Documents is the document service (for tests and tools).
func (n *Node) Documents() *collab.Service { return n.docs }

// DocumentHub is the data-channel hub of the documents (for tests and
// tools: Leave cuts a participant's documents session off).
func (n *Node) DocumentHub() *datachannel.Hub { return n.hub }

// docChanged reports created and deleted documents to the event bus.
func (n *Node) docChanged(change string, meta collab.DocMeta) {
	typ := admin.DocumentCreated
	if change == "deleted" {
		typ = admin.DocumentDeleted
	}
	n.events.Publish(admin.Event{Type: typ, Room: meta.Room, Document: meta.ID})
}

// startTURN starts the relay with the SFU's media addresses as the peers
// it may always reach.
func (n *Node) startTURN(media *sfu.Engine) (*turn.Server, error) {
	cfg := *n.cfg.TURN
	if cfg.Logger == nil {
		cfg.Logger = n.log.With("part", "turn")
	}
	cfg.Registerer = n.reg
	for _, a := range []net.Addr{media.UDPAddr(), media.TCPAddr()} {
		if a == nil {
			continue
		}
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return nil, fmt.Errorf("turn: sfu address %s: %w", a, err)
		}
		cfg.SFUAddrs = append(cfg.SFUAddrs, ap)
	}
	relay, err := turn.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("start turn: %w", err)
	}
	if err := relay.Start(n.ctx); err != nil {
		return nil, fmt.Errorf("start turn: %w", err)
	}
	return relay, nil
}

// Events is the node's event bus (for tests and the webhooks).
func (n *Node) Events() *admin.Bus { return n.events }

// startWebhooks starts delivering the bus's events to the configured
// endpoints, signed with the node's first API key unless told otherwise.
func (n *Node) startWebhooks() {
	if n.cfg.Webhooks == nil || len(n.cfg.Webhooks.URLs) == 0 {
		return
	}
	cfg := *n.cfg.Webhooks
	if cfg.Secret == "" {
		for k := range n.keys {
			if cfg.Key == "" || k < cfg.Key {
				cfg.Key = k
			}
		}
		cfg.Secret = n.keys[cfg.Key]
	}
	if cfg.Logger == nil {
		cfg.Logger = n.log.With("part", "webhook")
	}
	w := webhook.New(cfg)
	n.webhooks = w
	n.events.AddSink(func(e admin.Event) {
		body, err := json.Marshal(e)
		if err != nil {
			n.log.Error("encode webhook event", "err", err)
			return
		}
		w.Enqueue(strconv.FormatUint(e.ID, 10), body)
	})
	n.log.Info("webhooks on", "urls", cfg.URLs, "key", cfg.Key)
}

// WebhookStats are the webhook delivery counters (zero without webhooks).
func (n *Node) WebhookStats() webhook.Stats {
	if n.webhooks == nil {
		return webhook.Stats{}
	}
	return n.webhooks.Stats()
}

// metrics are per node (not the global registry) so that tests can run
// several nodes in one process.
type metrics struct {
	// Documents: ops made durable (rate() gives ops/s), group commits by
	// how long the store took, and failed commits (nothing acked).
	docOps         prometheus.Counter
	docCommit      prometheus.Histogram
	docCommitFails prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		docOps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "huddle_documents_ops_committed_total", Help: "Document ops made durable (and then acknowledged).",
		}),
		docCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "huddle_documents_commit_seconds", Help: "Time the store took for one group commit of a document's ops.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms to 4 s
		}),
		docCommitFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "huddle_documents_commit_failures_total", Help: "Group commits the store refused; none of their ops was acknowledged.",
		}),
	}
	reg.MustRegister(m.docOps, m.docCommit, m.docCommitFails)
	return m
}

// docCommitted is the document service's OnCommit hook.
func (m *metrics) docCommitted(ops int, took time.Duration, err error) {
	m.docCommit.Observe(took.Seconds())
	if err != nil {
		m.docCommitFails.Inc()
		return
	}
	m.docOps.Add(float64(ops))
}

// registerAdminMetrics exports the documents' data channels, the webhook
// counters and the open event streams. The functions read parts that exist
// only after Start, so each checks.
func (n *Node) registerAdminMetrics() {
	stat := func(f func(webhook.Stats) float64) func() float64 {
		return func() float64 { return f(n.WebhookStats()) }
	}
	n.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "huddle_datachannel_queued_bytes", Help: "Document messages waiting for slow data channels."},
			func() float64 { return float64(n.hubStats().QueuedBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "huddle_datachannel_lagging_total", Help: "Document streams dropped because a participant fell behind."},
			func() float64 { return float64(n.hubStats().Lagging) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "huddle_documents_open", Help: "Documents loaded in memory."},
			func() float64 {
				if n.docs == nil {
					return 0
				}
				return float64(n.docs.OpenDocs())
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "huddle_webhook_delivered_total", Help: "Webhook deliveries acknowledged with a 2xx."},
			stat(func(st webhook.Stats) float64 { return float64(st.Delivered) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "huddle_webhook_failed_attempts_total", Help: "Webhook attempts that failed and will be retried."},
			stat(func(st webhook.Stats) float64 { return float64(st.Failed) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "huddle_webhook_dropped_total", Help: "Webhook events dropped because an endpoint's queue was full."},
			stat(func(st webhook.Stats) float64 { return float64(st.Dropped) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "huddle_webhook_queued", Help: "Webhook events waiting for delivery."},
			stat(func(st webhook.Stats) float64 { return float64(st.Queued) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "huddle_admin_event_streams", Help: "Open admin event streams (SSE)."},
			func() float64 { return float64(n.events.Streams()) }),
	)
}
