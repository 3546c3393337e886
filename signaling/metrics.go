package signaling

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are per server (not the global registry) so that tests can run
// several servers in one process.
type metrics struct {
	rooms        prometheus.Gauge
	participants prometheus.Gauge
	messages     *prometheus.CounterVec
	errors       *prometheus.CounterVec

	// Documents: ops made durable (rate() gives ops/s), group commits by
	// how long the store took, and failed commits (nothing acked).
	docOps         prometheus.Counter
	docCommit      prometheus.Histogram
	docCommitFails prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "huddle_rooms", Help: "Rooms with at least one participant.",
		}),
		participants: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "huddle_participants", Help: "Joined participants.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "huddle_signaling_messages_total", Help: "Signaling messages received, by type.",
		}, []string{"type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "huddle_signaling_errors_total", Help: "Error messages sent to clients, by code.",
		}, []string{"code"}),
	}
	m.docOps = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "huddle_documents_ops_committed_total", Help: "Document ops made durable (and then acknowledged).",
	})
	m.docCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "huddle_documents_commit_seconds", Help: "Time the store took for one group commit of a document's ops.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms to 4 s
	})
	m.docCommitFails = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "huddle_documents_commit_failures_total", Help: "Group commits the store refused; none of their ops was acknowledged.",
	})
	reg.MustRegister(m.rooms, m.participants, m.messages, m.errors, m.docOps, m.docCommit, m.docCommitFails)
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
