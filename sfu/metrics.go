package sfu

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// pathCounts are one send path's totals.
type pathCounts struct {
	sent, queueDrops, behindDrops, resent uint64
	bytes, nacks, plis, firs              uint64
	pauses, switches                      uint64 // allocator.go
	delays                                [len(delayBuckets) + 1]uint64
	delaySumNs, delayBatchNs              uint64
	serverDelays                          [len(delayBuckets) + 1]uint64 // from the socket (rxstamp.go)
	serverDelaySumNs                      uint64
	probes, probesOK, probesFailed        uint64 // probe.go
	padPackets, padBytes                  uint64
	ownWakes                              uint64 // the path's own goroutine woken (sendworkers.go)
}

func (s *sendPath) counts() pathCounts {
	c := pathCounts{sent: s.sent.Load(), queueDrops: s.dropped.Load(), behindDrops: s.behind.Load(), resent: s.resent.Load(),
		bytes: s.bytes.Load(), nacks: s.nacks.Load(), plis: s.plis.Load(), firs: s.firs.Load(), pauses: s.pauses.Load(), switches: s.switches.Load(), ownWakes: s.wakes.Load()}
	for i := range c.delays {
		c.delays[i] = s.delays.counts[i].Load()
	}
	c.delaySumNs = s.delays.sumNs.Load()
	c.delayBatchNs = s.delays.batchNs.Load()
	for i := range c.serverDelays {
		c.serverDelays[i] = s.serverDelays.counts[i].Load()
	}
	c.serverDelaySumNs = s.serverDelays.sumNs.Load()
	if p := s.probe; p != nil {
		c.probes, c.probesOK, c.probesFailed = p.clusters.Load(), p.succeeded.Load(), p.failed.Load()
		c.padPackets, c.padBytes = p.padPackets.Load(), p.padBytes.Load()
	}
	return c
}

func (c *pathCounts) add(o pathCounts) {
	c.sent += o.sent
	c.queueDrops += o.queueDrops
	c.behindDrops += o.behindDrops
	c.resent += o.resent
	c.bytes += o.bytes
	c.nacks += o.nacks
	c.plis += o.plis
	c.firs += o.firs
	c.pauses += o.pauses
	c.switches += o.switches
	for i, n := range o.delays {
		c.delays[i] += n
	}
	c.delaySumNs += o.delaySumNs
	c.delayBatchNs += o.delayBatchNs
	for i, n := range o.serverDelays {
		c.serverDelays[i] += n
	}
	c.serverDelaySumNs += o.serverDelaySumNs
	c.probes += o.probes
	c.probesOK += o.probesOK
	c.probesFailed += o.probesFailed
	c.padPackets += o.padPackets
	c.padBytes += o.padBytes
	c.ownWakes += o.ownWakes
}

// engineMetrics sums the send paths' counters when scraped, so that the
// per-packet path only touches counters of its own (no cache line shared
// between cores).
type engineMetrics struct {
	e       *Engine
	mu      sync.Mutex
	live    map[*sendPath]struct{}
	retired pathCounts

	sent, dropped, resent, gsoSends, gsoPackets *prometheus.Desc
	bytes, nacks, plis, keyframesSentDesc       *prometheus.Desc
	pauses, switches                            *prometheus.Desc
	layerPackets                                *prometheus.Desc
	estimates                                   *prometheus.Desc
	delay, delayBatch, serverDelay              *prometheus.Desc
	probes, padPackets, padBytes                *prometheus.Desc
	wakeups                                     *prometheus.Desc
	layers                                      [maxLayers]atomic.Uint64 // received per spatial layer
	// keyframesSent counts PLIs sent to publishers by reason; they are a
	// few per second at most, so one shared counter set is cheap.
	keyframesSent [numKeyframeReasons]atomic.Uint64
}

func newEngineMetrics(e *Engine) *engineMetrics {
	return &engineMetrics{
		e:                 e,
		live:              map[*sendPath]struct{}{},
		sent:              prometheus.NewDesc("huddle_media_packets_sent_total", "RTP packets written to subscribers (first sends).", nil, nil),
		dropped:           prometheus.NewDesc("huddle_media_packets_dropped_total", "Packets the SFU dropped for one subscriber: its queue was full, or it fell a whole packet cache behind.", []string{"reason"}, nil),
		resent:            prometheus.NewDesc("huddle_media_retransmissions_total", "Packets resent to subscribers from the packet caches, on NACK.", nil, nil),
		gsoSends:          prometheus.NewDesc("huddle_media_gso_sends_total", "UDP GSO sends (each carries several packets).", nil, nil),
		gsoPackets:        prometheus.NewDesc("huddle_media_gso_packets_total", "Packets sent inside UDP GSO sends.", nil, nil),
		bytes:             prometheus.NewDesc("huddle_media_bytes_sent_total", "RTP bytes written to subscribers (first sends).", nil, nil),
		nacks:             prometheus.NewDesc("huddle_media_nacked_packets_total", "Packets subscribers asked to be resent (NACK).", nil, nil),
		plis:              prometheus.NewDesc("huddle_media_keyframe_requests_total", "Keyframe requests received from subscribers, by type (pli, fir), before the per-track throttle.", []string{"type"}, nil),
		keyframesSentDesc: prometheus.NewDesc("huddle_media_keyframe_requests_sent_total", "Keyframe requests (PLI) sent to publishers, after the per-layer throttle, by reason: subscriber (its PLI or FIR), start, switch (layer change), recovery (a subscriber's loss, full queue or resume), admin.", []string{"reason"}, nil),
		pauses:            prometheus.NewDesc("huddle_media_video_pauses_total", "Times the allocator paused a video for one subscriber (bandwidth or hidden tile).", nil, nil),
		layerPackets:      prometheus.NewDesc("huddle_media_layer_packets_received_total", "RTP packets received from publishers, by simulcast layer (q for tracks without simulcast).", []string{"layer"}, nil),
		estimates:         prometheus.NewDesc("huddle_media_subscriber_estimate_bps", "Downlink estimates of the subscribers connected now (GCC from TWCC feedback, or REMB), in bits/s, at scrape time.", nil, nil),
		switches:          prometheus.NewDesc("huddle_media_layer_switches_total", "Simulcast layer switches made by subscribers' downtracks.", nil, nil),
		delayBatch:        prometheus.NewDesc("huddle_media_forward_delay_in_batch_seconds_total", "Of huddle_media_forward_delay_seconds_sum, the time first sends spent inside the send batch that carried them (rewrite, SRTP, the GSO burst and its send); the rest is the wait for the send path to run.", nil, nil),
		delay:             prometheus.NewDesc("huddle_media_forward_delay_seconds", "Delay the SFU adds to first sends: from reading a publisher's packet to the end of the send that carried it to one subscriber.", nil, nil),
		serverDelay:       prometheus.NewDesc("huddle_media_server_delay_seconds", "Delay the server adds to first sends, whole: from a publisher's packet reaching the server's socket (the kernel's receive stamp) to the end of the send that carried it to one subscriber; huddle_media_forward_delay_seconds is its part from the forwarder's read.", nil, nil),
		probes:            prometheus.NewDesc("huddle_media_probe_clusters_total", "Bandwidth probe clusters sent to subscribers before a move up or a resume, by outcome (started, succeeded, failed).", []string{"outcome"}, nil),
		padPackets:        prometheus.NewDesc("huddle_media_probe_padding_packets_total", "Padding-only RTP packets sent to subscribers as bandwidth probes.", nil, nil),
		padBytes:          prometheus.NewDesc("huddle_media_probe_padding_bytes_total", "Padding bytes sent to subscribers as bandwidth probes.", nil, nil),
		wakeups:           prometheus.NewDesc("huddle_media_send_wakeups_total", "Goroutines woken to send to subscribers, by runner: a send worker (shared, one per CPU) or a subscriber's own goroutine (non-UDP pairs).", []string{"runner"}, nil),
	}
}

func (m *engineMetrics) track(s *sendPath) {
	m.mu.Lock()
	m.live[s] = struct{}{}
	m.mu.Unlock()
}

// retire folds a closed send path's counters into the totals.
func (m *engineMetrics) retire(s *sendPath) {
	m.mu.Lock()
	delete(m.live, s)
	m.retired.add(s.counts())
	m.mu.Unlock()
}

func (m *engineMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.sent, m.dropped, m.resent, m.gsoSends, m.gsoPackets, m.bytes, m.nacks, m.plis, m.keyframesSentDesc, m.pauses, m.switches, m.layerPackets, m.estimates, m.delay, m.delayBatch, m.serverDelay, m.probes, m.padPackets, m.padBytes, m.wakeups} {
		ch <- d
	}
}

func (m *engineMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	t := m.retired
	est := newEstimateHistogram()
	for s := range m.live {
		t.add(s.counts())
		if bps, ok := s.est.estimate(); ok {
			est.add(bps)
		}
	}
	m.mu.Unlock()
	ch <- prometheus.MustNewConstHistogram(m.estimates, est.count, est.sum, est.buckets)
	ch <- delayMetric(m.delay, &t.delays, t.delaySumNs)
	ch <- delayMetric(m.serverDelay, &t.serverDelays, t.serverDelaySumNs)
	ch <- prometheus.MustNewConstMetric(m.delayBatch, prometheus.CounterValue, float64(t.delayBatchNs)/1e9)
	ch <- prometheus.MustNewConstMetric(m.sent, prometheus.CounterValue, float64(t.sent))
	ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(t.queueDrops), "queue_full")
	ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(t.behindDrops), "fell_behind")
	ch <- prometheus.MustNewConstMetric(m.resent, prometheus.CounterValue, float64(t.resent))
	ch <- prometheus.MustNewConstMetric(m.bytes, prometheus.CounterValue, float64(t.bytes))
	ch <- prometheus.MustNewConstMetric(m.nacks, prometheus.CounterValue, float64(t.nacks))
	ch <- prometheus.MustNewConstMetric(m.plis, prometheus.CounterValue, float64(t.plis), "pli")
	ch <- prometheus.MustNewConstMetric(m.plis, prometheus.CounterValue, float64(t.firs), "fir")
	for why, name := range keyframeReasonNames {
		ch <- prometheus.MustNewConstMetric(m.keyframesSentDesc, prometheus.CounterValue, float64(m.keyframesSent[why].Load()), name)
	}
	ch <- prometheus.MustNewConstMetric(m.pauses, prometheus.CounterValue, float64(t.pauses))
	ch <- prometheus.MustNewConstMetric(m.switches, prometheus.CounterValue, float64(t.switches))
	ch <- prometheus.MustNewConstMetric(m.probes, prometheus.CounterValue, float64(t.probes), "started")
	ch <- prometheus.MustNewConstMetric(m.probes, prometheus.CounterValue, float64(t.probesOK), "succeeded")
	ch <- prometheus.MustNewConstMetric(m.probes, prometheus.CounterValue, float64(t.probesFailed), "failed")
	ch <- prometheus.MustNewConstMetric(m.padPackets, prometheus.CounterValue, float64(t.padPackets))
	ch <- prometheus.MustNewConstMetric(m.padBytes, prometheus.CounterValue, float64(t.padBytes))
	for i, rid := range [maxLayers]string{"q", "h", "f"} {
		ch <- prometheus.MustNewConstMetric(m.layerPackets, prometheus.CounterValue, float64(m.layers[i].Load()), rid)
	}
	var workerWakes uint64
	if w := m.e.workers; w != nil {
		workerWakes = w.wakeups.Load()
	}
	ch <- prometheus.MustNewConstMetric(m.wakeups, prometheus.CounterValue, float64(workerWakes), "worker")
	ch <- prometheus.MustNewConstMetric(m.wakeups, prometheus.CounterValue, float64(t.ownWakes), "own")
	var sends, pkts uint64
	if g := m.e.gso; g != nil {
		sends, pkts = g.gsoSends.Load(), g.gsoPackets.Load()
	}
	ch <- prometheus.MustNewConstMetric(m.gsoSends, prometheus.CounterValue, float64(sends))
	ch <- prometheus.MustNewConstMetric(m.gsoPackets, prometheus.CounterValue, float64(pkts))
}

// estimateBuckets span an audio-only link to a fast LAN, in bits/s.
var estimateBuckets = []float64{100e3, 300e3, 1e6, 3e6, 10e6, 30e6}

// estimateHistogram gathers the live subscribers' estimates at scrape time.
type estimateHistogram struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64 // cumulative, as Prometheus wants them
}

func newEstimateHistogram() estimateHistogram {
	h := estimateHistogram{buckets: make(map[float64]uint64, len(estimateBuckets))}
	for _, b := range estimateBuckets {
		h.buckets[b] = 0
	}
	return h
}

func (h *estimateHistogram) add(bps float64) {
	h.count++
	h.sum += bps
	for _, b := range estimateBuckets {
		if bps <= b {
			h.buckets[b]++
		}
	}
}

// delayMetric is a delay histogram of all send paths (forward or server).
func delayMetric(d *prometheus.Desc, counts *[len(delayBuckets) + 1]uint64, sumNs uint64) prometheus.Metric {
	buckets := make(map[float64]uint64, len(delayBuckets))
	var cum uint64
	for i, b := range delayBuckets {
		cum += counts[i]
		buckets[b] = cum
	}
	return prometheus.MustNewConstHistogram(d, cum+counts[len(delayBuckets)], float64(sumNs)/1e9, buckets)
}
