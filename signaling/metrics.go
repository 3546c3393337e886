package signaling

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are per server (not the global registry) so that tests can run
// several servers in one process.
type metrics struct {
	rooms        prometheus.Gauge
	participants prometheus.Gauge
	messages     *prometheus.CounterVec
	errors       *prometheus.CounterVec
	dropped      *prometheus.CounterVec
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
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "huddle_signaling_messages_dropped_total", Help: "Ephemeral messages not sent to a client because its send queue was full, by type (typing, speakersChanged, connectionQuality).",
		}, []string{"type"}),
	}
	reg.MustRegister(m.rooms, m.participants, m.messages, m.errors, m.dropped)
	return m
}
