package cluster

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	reg        prometheus.Registerer
	members    prometheus.Gauge
	links      prometheus.Gauge
	frames     *prometheus.CounterVec // dir: in, out
	closes     *prometheus.CounterVec // reason
	placements *prometheus.CounterVec // result: existing, claimed, takeover
	roomsLost  prometheus.Counter
	all        []prometheus.Collector
}

// newMetrics registers the cluster's metrics on reg; with a nil reg they
// are kept but not exported.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reg: reg,
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "huddle_cluster_members", Help: "Live cluster nodes as of this node's last refresh.",
		}),
		links: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "huddle_cluster_links_open", Help: "Relay links open on this node, both directions.",
		}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "huddle_cluster_relay_frames_total", Help: "Frames relayed through Redis, by direction.",
		}, []string{"dir"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "huddle_cluster_link_closes_total", Help: "Relay links closed, by reason.",
		}, []string{"reason"}),
		placements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "huddle_cluster_placements_total", Help: "Place calls by result: existing owner, claimed, taken over from an expired owner.",
		}, []string{"result"}),
		roomsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "huddle_cluster_rooms_lost_total", Help: "Held rooms found owned by another node or epoch.",
		}),
	}
	m.all = []prometheus.Collector{m.members, m.links, m.frames, m.closes, m.placements, m.roomsLost}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.all {
		if err := reg.Register(c); err != nil {
			for _, done := range m.all[:i] {
				reg.Unregister(done)
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.all {
		m.reg.Unregister(c)
	}
}
