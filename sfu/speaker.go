package sfu

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// AudioLevelURI is the RTP header extension of RFC 6464: each audio packet
// carries the sender's level in -dBov (0 loudest, 127 silence) and a voice
// flag. The engine negotiates it on publisher PeerConnections.
const AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// Speaker is one active speaker with its smoothed level, 0 (silence) to 1.
type Speaker struct {
	PeerID string
	Level  float64
}

// SpeakerEvents is implemented by RoomEvents that want speaker changes.
// SpeakersChanged is called from the detector's goroutine, at most once per
// speakerInterval, with the speakers loudest first (empty: nobody speaks).
type SpeakerEvents interface {
	SpeakersChanged(speakers []Speaker)
}

const (
	// speakerInterval bounds how often speaker changes go out.
	speakerInterval = 300 * time.Millisecond
	// speakerThreshold is the smoothed level above which someone speaks:
	// about -50 dBov, above background noise with noise suppression on.
	speakerThreshold = 0.25
	// speakerHalfLife is how fast the smoothed level follows the packets: a
	// word lights the tile within a few hundred ms, a pause of a breath
	// does not drop it.
	speakerHalfLife = 200 * time.Millisecond
	// maxSpeakers bounds the list sent to the room.
	maxSpeakers = 3
	// speakerHysteresis: a challenger must be this much louder to take
	// the first place, so two similar voices do not flap.
	speakerHysteresis = 0.05
)

// SpeakerDetector smooths the audio levels of a room's publishers and
// decides who speaks. It is fed from the packet path (Observe, cheap and
// lock-light) and read by a ticker (Tick). Self-contained: it knows nothing
// of tracks or PeerConnections.
type SpeakerDetector struct {
	mu      sync.Mutex
	levels  map[string]*smoothedLevel // by peer id
	last    []string                  // the last list sent, by peer id
	lastAt  time.Time
	changed bool
}

type smoothedLevel struct {
	value float64
	at    time.Time
}

// NewSpeakerDetector makes an empty detector.
func NewSpeakerDetector() *SpeakerDetector {
	return &SpeakerDetector{levels: map[string]*smoothedLevel{}}
}

// Observe takes one packet's RFC 6464 level (-dBov, 0..127) for a peer.
func (d *SpeakerDetector) Observe(peerID string, dBov uint8, now time.Time) {
	v := loudness(dBov)
	d.mu.Lock()
	l := d.levels[peerID]
	if l == nil {
		l = &smoothedLevel{at: now}
		d.levels[peerID] = l
	}
	l.value = decayed(l.value, now.Sub(l.at)) // toward zero while unheard
	// An exponential moving average weighted by the time since the last
	// packet, so that 10 ms and 60 ms packets count alike per second.
	w := 1 - halfLifeFactor(now.Sub(l.at))
	if w < 0.02 {
		w = 0.02
	}
	l.value += (v - l.value) * w
	l.at = now
	d.mu.Unlock()
}

// Forget drops a peer (it left, or its audio ended).
func (d *SpeakerDetector) Forget(peerID string) {
	d.mu.Lock()
	delete(d.levels, peerID)
	d.mu.Unlock()
}

// Tick returns the speakers, loudest first, when the list differs from the
// last one returned and speakerInterval has passed since; else ok is false.
// Levels of peers that sent nothing lately (muted: no packets at all) decay.
func (d *SpeakerDetector) Tick(now time.Time) (speakers []Speaker, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.lastAt.IsZero() && now.Sub(d.lastAt) < speakerInterval {
		return nil, false
	}
	for id, l := range d.levels {
		if v := decayed(l.value, now.Sub(l.at)); v >= speakerThreshold {
			speakers = append(speakers, Speaker{PeerID: id, Level: v})
		}
	}
	slices.SortFunc(speakers, func(a, b Speaker) int {
		switch {
		case a.Level > b.Level:
			return -1
		case a.Level < b.Level:
			return 1
		}
		return cmp.Compare(a.PeerID, b.PeerID)
	})
	// The previous first speaker keeps the first place unless clearly beaten.
	if len(d.last) > 0 && len(speakers) > 1 && speakers[0].PeerID != d.last[0] {
		for i, s := range speakers {
			if s.PeerID == d.last[0] && speakers[0].Level-s.Level < speakerHysteresis {
				speakers[0], speakers[i] = speakers[i], speakers[0]
				break
			}
		}
	}
	if len(speakers) > maxSpeakers {
		speakers = speakers[:maxSpeakers]
	}
	ids := make([]string, len(speakers))
	for i, s := range speakers {
		ids[i] = s.PeerID
		speakers[i].Level = float64(int(s.Level*100)) / 100 // two digits are plenty on the wire
	}
	if slices.Equal(ids, d.last) && !d.lastAt.IsZero() {
		return nil, false
	}
	if len(ids) == 0 && d.last == nil && d.lastAt.IsZero() {
		return nil, false // nobody ever spoke: nothing to say
	}
	d.last, d.lastAt = ids, now
	if speakers == nil {
		speakers = []Speaker{}
	}
	return speakers, true
}

// loudnessFloor is the -dBov at and below which a packet counts as silence:
// room noise reaches about -70 dBov, speech sits around -20 to -40.
const loudnessFloor = 80

// loudness maps -dBov (0 loudest .. 127 silence) to 0..1, linear between
// the floor (0) and 0 dBov (1).
func loudness(dBov uint8) float64 {
	if dBov >= loudnessFloor {
		return 0
	}
	return float64(loudnessFloor-dBov) / loudnessFloor
}

func halfLifeFactor(dt time.Duration) float64 {
	if dt <= 0 {
		return 1
	}
	// 0.5^(dt/halfLife) without math.Pow's cost for the common small dt.
	f := 1.0
	for dt >= speakerHalfLife {
		f *= 0.5
		dt -= speakerHalfLife
	}
	x := float64(dt) / float64(speakerHalfLife)
	return f * (1 - 0.5*x) // linear between halvings: close enough here
}

// decayed is a level after dt without packets. Packets arrive every 20 ms
// or so while a track is live; silence beyond 100 ms means muted or gone.
func decayed(v float64, dt time.Duration) float64 {
	if dt <= 100*time.Millisecond {
		return v
	}
	return v * halfLifeFactor(dt-100*time.Millisecond)
}

// speakerLoop ticks a room's detector and reports changes until stop.
type speakerLoop struct {
	detector *SpeakerDetector
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

func startSpeakerLoop(d *SpeakerDetector, events RoomEvents) *speakerLoop {
	l := &speakerLoop{detector: d, stop: make(chan struct{}), done: make(chan struct{})}
	se, ok := events.(SpeakerEvents)
	go func() {
		defer close(l.done)
		if !ok {
			return
		}
		t := time.NewTicker(speakerInterval / 3)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case now := <-t.C:
				if s, changed := d.Tick(now); changed {
					se.SpeakersChanged(s)
				}
			}
		}
	}()
	return l
}

// close stops the loop and waits for it; later calls only wait.
func (l *speakerLoop) close() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}

// audioLevelExtID finds the negotiated id of the audio-level extension on
// a receiver, or 0.
func audioLevelExtID(exts []webrtc.RTPHeaderExtensionParameter) uint8 {
	for _, e := range exts {
		if e.URI == AudioLevelURI {
			return uint8(e.ID)
		}
	}
	return 0
}
