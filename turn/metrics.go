package turn

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats is a snapshot of the relay's counters. With Config.Registerer set,
// the same numbers are exported to Prometheus under the names given in the
// field comments.
type Stats struct {
	// huddle_turn_allocations_active
	ActiveAllocations int64
	// huddle_turn_allocations_created_total
	AllocationsCreated uint64
	// huddle_turn_allocations_refused_total{reason="quota"}
	AllocationsRefusedQuota uint64
	// huddle_turn_auth_failures_total{reason=...}: missing, malformed,
	// expired, wrong_realm, bad_password.
	AuthFailures map[string]uint64
	// huddle_turn_permission_refusals_total{reason=...}: CreatePermission
	// or ChannelBind refused by the peer policy (self, non_global, invalid).
	PermissionRefusals map[string]uint64
	// huddle_turn_relay_dropped_packets_total{reason=...}: datagrams the
	// relay socket refused after a permission existed (sfu_port, or a
	// policy change since the permission was granted).
	DroppedPackets map[string]uint64
	// huddle_turn_relayed_packets_total{direction="to_peer"|"from_peer"}
	PacketsToPeer, PacketsFromPeer uint64
	// huddle_turn_relayed_bytes_total{direction="to_peer"|"from_peer"}
	BytesToPeer, BytesFromPeer uint64
}

// metrics holds the live counters. The per-packet ones are plain atomics
// (no locks, no allocations); labelled counters are rare events behind a
// mutex.
type metrics struct {
	active          atomic.Int64
	created         atomic.Uint64
	refusedQuota    atomic.Uint64
	packetsToPeer   atomic.Uint64
	packetsFromPeer atomic.Uint64
	bytesToPeer     atomic.Uint64
	bytesFromPeer   atomic.Uint64

	mu          sync.Mutex
	authFail    map[string]uint64
	permRefused map[string]uint64
	dropped     map[string]uint64
}

func newMetrics() *metrics {
	return &metrics{
		authFail:    map[string]uint64{},
		permRefused: map[string]uint64{},
		dropped:     map[string]uint64{},
	}
}

func (m *metrics) inc(counter map[string]uint64, label string) {
	m.mu.Lock()
	counter[label]++
	m.mu.Unlock()
}

func (m *metrics) snapshot() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{
		ActiveAllocations:       m.active.Load(),
		AllocationsCreated:      m.created.Load(),
		AllocationsRefusedQuota: m.refusedQuota.Load(),
		AuthFailures:            copyCounts(m.authFail),
		PermissionRefusals:      copyCounts(m.permRefused),
		DroppedPackets:          copyCounts(m.dropped),
		PacketsToPeer:           m.packetsToPeer.Load(),
		PacketsFromPeer:         m.packetsFromPeer.Load(),
		BytesToPeer:             m.bytesToPeer.Load(),
		BytesFromPeer:           m.bytesFromPeer.Load(),
	}
}

func copyCounts(in map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// collector exports the counters to Prometheus. It reads the same atomics
// the relay updates, so the packet path pays nothing for being scraped.
type collector struct {
	m *metrics

	active, created, refused, auth, perm, dropped, packets, bytes *prometheus.Desc
}

func newCollector(m *metrics) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("huddle_turn_"+name, help, labels, nil)
	}
	return &collector{
		m:       m,
		active:  d("allocations_active", "TURN allocations currently open."),
		created: d("allocations_created_total", "TURN allocations created."),
		refused: d("allocations_refused_total", "TURN allocations refused, by reason.", "reason"),
		auth: d("auth_failures_total",
			"TURN requests refused for their credentials, by reason (missing, malformed, expired, wrong_realm, bad_password).", "reason"),
		perm: d("permission_refusals_total",
			"TURN permissions and channel bindings refused by the peer policy, by reason (self, non_global, invalid).", "reason"),
		dropped: d("relay_dropped_packets_total",
			"Datagrams dropped at the relay socket by the peer policy, by reason (sfu_port, ...).", "reason"),
		packets: d("relayed_packets_total", "Datagrams relayed, by direction (to_peer, from_peer).", "direction"),
		bytes:   d("relayed_bytes_total", "Payload bytes relayed, by direction (to_peer, from_peer).", "direction"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.active, c.created, c.refused, c.auth, c.perm, c.dropped, c.packets, c.bytes} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.snapshot()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(s.ActiveAllocations))
	counter(c.created, s.AllocationsCreated)
	counter(c.refused, s.AllocationsRefusedQuota, "quota")
	for _, l := range []struct {
		d      *prometheus.Desc
		counts map[string]uint64
	}{{c.auth, s.AuthFailures}, {c.perm, s.PermissionRefusals}, {c.dropped, s.DroppedPackets}} {
		for reason, v := range l.counts {
			counter(l.d, v, reason)
		}
	}
	counter(c.packets, s.PacketsToPeer, "to_peer")
	counter(c.packets, s.PacketsFromPeer, "from_peer")
	counter(c.bytes, s.BytesToPeer, "to_peer")
	counter(c.bytes, s.BytesFromPeer, "from_peer")
}
