package sfu

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Connection quality levels, as in the signaling protocol.
const (
	QualityExcellent = "excellent"
	QualityGood      = "good"
	QualityPoor      = "poor"
)

// LinkStats are one window's figures for one participant, the worse of its
// two directions: loss and jitter of what it sends (measured here on
// receipt) and of what it receives (from its receiver reports), and the
// round-trip time from those reports.
type LinkStats struct {
	LossPercent float64
	JitterMs    float64
	RTTMs       float64
}

// PeerQuality is one participant's quality for the room.
type PeerQuality struct {
	PeerID string
	Level  string
	LinkStats
}

// QualityEvents is implemented by RoomEvents that want quality reports.
// QualityChanged is called from the monitor's goroutine every
// qualityInterval with the participants whose level changed, and with
// everyone every qualityRefresh (the figures for tooltips).
type QualityEvents interface {
	QualityChanged(updates []PeerQuality)
}

const (
	qualityInterval = 2 * time.Second
	qualityRefresh  = 5 // intervals between full reports
)

// ScoreQuality maps figures to a level. The thresholds follow what people
// notice in a call: up to 2% loss Opus and NACK hide entirely; past 8%
// speech breaks up and video freezes; past 300 ms RTT people talk over
// each other.
func ScoreQuality(s LinkStats) string {
	switch {
	case s.LossPercent >= 8 || s.RTTMs >= 400 || s.JitterMs >= 80:
		return QualityPoor
	case s.LossPercent >= 2 || s.RTTMs >= 200 || s.JitterMs >= 30:
		return QualityGood
	}
	return QualityExcellent
}

// QualityScorer gathers one participant's figures over a window. It is fed
// from the packet path (uplink RTP) and the RTCP path (downlink receiver
// reports); Sample closes a window. Self-contained: no Pion state.
type QualityScorer struct {
	mu      sync.Mutex
	streams map[uint32]*rxStream // uplink, by SSRC
	// Downlink: the worst report of the window.
	downLoss, downJitterMs float64
	rttMs                  float64 // the latest measured, kept across windows
	level                  string
	lastUpLoss             float64 // uplink loss percent of the last window
}

// rxStream is one uplink stream's receive state (RFC 3550 A.3 and A.8).
type rxStream struct {
	clockRate    float64
	timeJitter   bool // audio: packets leave at a steady pace, so jitter means the network
	started      bool
	highest      uint16
	got, lost    int     // this window: first-time arrivals and gaps
	jitter       float64 // in RTP units
	lastTransit  float64
	lastArrivalS float64
}

// NewQualityScorer makes a scorer that starts as excellent.
func NewQualityScorer() *QualityScorer {
	return &QualityScorer{streams: map[uint32]*rxStream{}, level: QualityExcellent}
}

// maxScoredStreams bounds the uplink streams one scorer tracks.
const maxScoredStreams = 16

// ObserveRTP takes one received packet of the participant's uplink. A
// retransmission (a sequence number at or below the highest seen) repairs
// a loss already counted: the network lost it all the same. Jitter counts
// for audio only: a video frame's packets share one timestamp and leave
// over an encoder's varying delay and a pacer's spread, which would read as
// network jitter where there is none.
func (q *QualityScorer) ObserveRTP(h *rtp.Header, clockRate uint32, audio bool, arrival time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.streams[h.SSRC]
	if s == nil {
		if len(q.streams) >= maxScoredStreams || clockRate == 0 {
			return
		}
		s = &rxStream{clockRate: float64(clockRate), timeJitter: audio}
		q.streams[h.SSRC] = s
	}
	if !s.started {
		s.started, s.highest, s.got = true, h.SequenceNumber, 1
		s.lastArrivalS = float64(arrival.UnixNano()) / 1e9
		s.lastTransit = s.lastArrivalS*s.clockRate - float64(h.Timestamp)
		return
	}
	diff := int16(h.SequenceNumber - s.highest)
	if diff <= 0 {
		return // retransmitted or reordered
	}
	s.lost += int(diff) - 1
	s.got++
	s.highest = h.SequenceNumber
	arr := float64(arrival.UnixNano()) / 1e9
	transit := arr*s.clockRate - float64(h.Timestamp)
	d := transit - s.lastTransit
	if d < 0 {
		d = -d
	}
	if s.timeJitter && arr-s.lastArrivalS < 1 { // a pause (muted) is not jitter
		s.jitter += (d - s.jitter) / 16
	}
	s.lastTransit, s.lastArrivalS = transit, arr
}

// UplinkLoss is the share of this participant's packets, in percent, that
// were lost before reaching the server: the greater of the last window's
// and the current one's so far.
func (q *QualityScorer) UplinkLoss() float64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	got, lost := 0, 0
	for _, s := range q.streams {
		got += s.got
		lost += s.lost
	}
	cur := 0.0
	if got+lost > 0 {
		cur = float64(lost) * 100 / float64(got+lost)
	}
	return max(cur, q.lastUpLoss)
}

// ObserveReceiverReport takes one report block the participant sent about
// a track it receives; clockRate 0 leaves its jitter out (video, as in
// ObserveRTP). upstreamLoss is the loss (percent) the track had
// before the server, which the subscriber's report counts too but which is
// not its connection's fault.
func (q *QualityScorer) ObserveReceiverReport(r rtcp.ReceptionReport, clockRate uint32, upstreamLoss float64, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.downLoss = max(q.downLoss, float64(r.FractionLost)*100/256-upstreamLoss)
	if clockRate > 0 {
		q.downJitterMs = max(q.downJitterMs, float64(r.Jitter)*1000/float64(clockRate))
	}
	if r.LastSenderReport != 0 {
		// RTT = now - LSR - DLSR, all in the middle 32 bits of NTP time.
		rtt := ntpMiddle(now) - r.LastSenderReport - r.Delay
		if ms := float64(rtt) * 1000 / 65536; ms >= 0 && ms < 10000 {
			q.rttMs = ms
		}
	}
}

// Sample closes the window: it returns the figures since the last Sample
// and the level they give. A level rises (better) only when a whole window
// earns it, and falls at once.
func (q *QualityScorer) Sample() (LinkStats, string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var st LinkStats
	got, lost := 0, 0
	for _, s := range q.streams {
		got += s.got
		lost += s.lost
		st.JitterMs = max(st.JitterMs, s.jitter*1000/s.clockRate)
		s.got, s.lost = 0, 0
	}
	if got+lost > 0 {
		st.LossPercent = float64(lost) * 100 / float64(got+lost)
	}
	q.lastUpLoss = st.LossPercent
	st.LossPercent = max(st.LossPercent, q.downLoss)
	st.JitterMs = max(st.JitterMs, q.downJitterMs)
	st.RTTMs = q.rttMs
	q.downLoss, q.downJitterMs = 0, 0
	q.level = ScoreQuality(st)
	return st, q.level
}

// ntpMiddle is the middle 32 bits of the NTP timestamp of t.
func ntpMiddle(t time.Time) uint32 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) * (1 << 32) / 1e9
	return uint32(secs<<16) | uint32(frac>>16)
}

// qualityMonitor holds the scorers of a room's peers and reports them.
type qualityMonitor struct {
	mu      sync.Mutex
	scorers map[string]*QualityScorer
	sent    map[string]string // peer id -> level last reported
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func startQualityMonitor(events RoomEvents) *qualityMonitor {
	m := &qualityMonitor{scorers: map[string]*QualityScorer{}, sent: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	qe, ok := events.(QualityEvents)
	go func() {
		defer close(m.done)
		if !ok {
			return
		}
		t := time.NewTicker(qualityInterval)
		defer t.Stop()
		for tick := 1; ; tick++ {
			select {
			case <-m.stop:
				return
			case <-t.C:
				if u := m.sample(tick%qualityRefresh == 0); len(u) > 0 {
					qe.QualityChanged(u)
				}
			}
		}
	}()
	return m
}

// scorer returns a peer's scorer, making it on first use.
func (m *qualityMonitor) scorer(peerID string) *QualityScorer {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.scorers[peerID]
	if q == nil {
		q = NewQualityScorer()
		m.scorers[peerID] = q
	}
	return q
}

func (m *qualityMonitor) forget(peerID string) {
	m.mu.Lock()
	delete(m.scorers, peerID)
	delete(m.sent, peerID)
	m.mu.Unlock()
}

// sample closes every scorer's window and lists what changed (or all).
func (m *qualityMonitor) sample(all bool) []PeerQuality {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []PeerQuality
	for id, q := range m.scorers {
		st, level := q.Sample()
		if all || m.sent[id] != level {
			m.sent[id] = level
			out = append(out, PeerQuality{PeerID: id, Level: level, LinkStats: st})
		}
	}
	return out
}

// close stops the monitor and waits for it; later calls only wait.
func (m *qualityMonitor) close() {
	m.once.Do(func() { close(m.stop) })
	<-m.done
}

// trackMeter watches one published track's packets for the room: their
// audio level for the speaker detector and their arrival for the
// publisher's quality scorer. Called on the forwarder's read path.
type trackMeter struct {
	peerID    string
	audio     bool
	levelExt  uint8 // negotiated id of the audio-level extension, or 0
	clockRate uint32
	speakers  *SpeakerDetector
	quality   *QualityScorer
}

func (r *Room) newTrackMeter(peerID string, remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) *trackMeter {
	m := &trackMeter{peerID: peerID, clockRate: remote.Codec().ClockRate, quality: r.quality.scorer(peerID)}
	if remote.Kind() == webrtc.RTPCodecTypeAudio {
		m.audio = true
		m.speakers = r.speakers
		m.levelExt = audioLevelExtID(receiver.GetParameters().HeaderExtensions)
	}
	return m
}

func (m *trackMeter) observe(h *rtp.Header) {
	if m == nil {
		return
	}
	now := time.Now()
	m.quality.ObserveRTP(h, m.clockRate, m.audio, now)
	if m.levelExt != 0 {
		if ext := h.GetExtension(m.levelExt); len(ext) > 0 {
			m.speakers.Observe(m.peerID, ext[0]&0x7f, now)
		}
	}
}

// PacketsReceived is how many packets of a published track the server has
// read from its publisher: what tests check to see that a muted track
// really stopped sending.
func (r *Room) PacketsReceived(trackID string) (uint64, bool) {
	r.mu.Lock()
	f := r.tracks[trackID]
	r.mu.Unlock()
	if f == nil {
		return 0, false
	}
	return f.packets.Load(), true
}

// observeReport passes a subscriber's report blocks about this downtrack
// to the subscriber's quality scorer.
func (d *DownTrack) observeReport(reports []rtcp.ReceptionReport) {
	if d.quality == nil {
		return
	}
	d.mu.Lock()
	ssrc := d.ssrc
	d.mu.Unlock()
	upstream := 0.0
	if m := d.fwd.meter; m != nil {
		upstream = m.quality.UplinkLoss()
	}
	clock := d.codec.ClockRate
	if d.fwd.kind != webrtc.RTPCodecTypeAudio {
		clock = 0 // video jitter is not the network's (see ObserveRTP)
	}
	for _, r := range reports {
		if r.SSRC == ssrc {
			d.quality.ObserveReceiverReport(r, clock, upstream, time.Now())
		}
	}
}
