package turn

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
)

// Stats is a snapshot of the relay's counters. Server.WritePrometheus
// exposes the same numbers in the Prometheus text format under the names
// given in the field comments.
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

// WritePrometheus writes the relay's metrics in the Prometheus text
// exposition format (version 0.0.4), so that /metrics can include them
// without this package depending on a metrics library.
func (s Stats) WritePrometheus(w io.Writer) error {
	pw := &promWriter{w: w}
	pw.family("huddle_turn_allocations_active", "gauge", "TURN allocations currently open.")
	pw.sample("huddle_turn_allocations_active", "", "", float64(s.ActiveAllocations))
	pw.family("huddle_turn_allocations_created_total", "counter", "TURN allocations created.")
	pw.sample("huddle_turn_allocations_created_total", "", "", float64(s.AllocationsCreated))
	pw.family("huddle_turn_allocations_refused_total", "counter", "TURN allocations refused, by reason.")
	pw.sample("huddle_turn_allocations_refused_total", "reason", "quota", float64(s.AllocationsRefusedQuota))
	pw.labelled("huddle_turn_auth_failures_total", "TURN requests refused for their credentials, by reason.", "reason", s.AuthFailures)
	pw.labelled("huddle_turn_permission_refusals_total", "TURN permissions and channel bindings refused by the peer policy, by reason.", "reason", s.PermissionRefusals)
	pw.labelled("huddle_turn_relay_dropped_packets_total", "Relayed datagrams dropped by the peer policy, by reason.", "reason", s.DroppedPackets)
	pw.labelled("huddle_turn_relayed_packets_total", "Datagrams relayed, by direction.", "direction",
		map[string]uint64{"to_peer": s.PacketsToPeer, "from_peer": s.PacketsFromPeer})
	pw.labelled("huddle_turn_relayed_bytes_total", "Payload bytes relayed, by direction.", "direction",
		map[string]uint64{"to_peer": s.BytesToPeer, "from_peer": s.BytesFromPeer})
	return pw.err
}

// promWriter writes exposition lines and keeps the first error.
type promWriter struct {
	w   io.Writer
	err error
}

func (p *promWriter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *promWriter) family(name, typ, help string) {
	p.printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (p *promWriter) sample(name, label, value string, v float64) {
	if label == "" {
		p.printf("%s %g\n", name, v)
		return
	}
	// Label values here are fixed identifiers, never user input, so they
	// need no escaping.
	p.printf("%s{%s=%q} %g\n", name, label, value, v)
}

func (p *promWriter) labelled(name, help, label string, counts map[string]uint64) {
	p.family(name, "counter", help)
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.sample(name, label, k, float64(counts[k]))
	}
}
