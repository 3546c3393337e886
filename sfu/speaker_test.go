package sfu

import (
	"log/slog"
	"testing"
	"time"
)

// feed sends 20 ms packets from two peers at the given -dBov levels.
func feed(d *SpeakerDetector, at time.Time, dur time.Duration, levels map[string]uint8) time.Time {
	for t := time.Duration(0); t < dur; t += 20 * time.Millisecond {
		for id, l := range levels {
			d.Observe(id, l, at.Add(t))
		}
	}
	return at.Add(dur)
}

func TestSpeakerDetectorNamesTheLouderAndSwitches(t *testing.T) {
	d := NewSpeakerDetector()
	now := time.Unix(1000, 0)
	if _, ok := d.Tick(now); ok {
		t.Fatal("an empty room reported speakers")
	}
	now = feed(d, now, time.Second, map[string]uint8{"a": 20, "b": 50})
	s, ok := d.Tick(now)
	if !ok || len(s) != 2 || s[0].PeerID != "a" || s[1].PeerID != "b" || s[0].Level <= s[1].Level {
		t.Fatalf("speakers %+v (%v), want a then b", s, ok)
	}
	// Nothing changed: nothing to send, even after the interval.
	now = feed(d, now, time.Second, map[string]uint8{"a": 20, "b": 50})
	if s, ok := d.Tick(now); ok {
		t.Fatalf("unchanged speakers reported again: %+v", s)
	}
	// The levels swap: b leads once the smoothing catches up.
	now = feed(d, now, time.Second, map[string]uint8{"a": 50, "b": 20})
	s, ok = d.Tick(now)
	if !ok || s[0].PeerID != "b" {
		t.Fatalf("after the swap: %+v (%v), want b first", s, ok)
	}
	// Silence (127) from b and no packets at all from a (muted): nobody.
	now = feed(d, now, time.Second, map[string]uint8{"b": 127})
	s, ok = d.Tick(now)
	if !ok || len(s) != 0 {
		t.Fatalf("after silence: %+v (%v), want an empty list", s, ok)
	}
}

func TestSpeakerDetectorBoundsRate(t *testing.T) {
	d := NewSpeakerDetector()
	now := time.Unix(1000, 0)
	now = feed(d, now, time.Second, map[string]uint8{"a": 20})
	if _, ok := d.Tick(now); !ok {
		t.Fatal("first speaker not reported")
	}
	// b starts to speak loudly and a falls silent: the change waits for
	// the interval, however many ticks come before.
	last := now
	for now.Sub(last) < speakerInterval-20*time.Millisecond {
		now = feed(d, now, 20*time.Millisecond, map[string]uint8{"a": 127, "b": 0})
		if s, ok := d.Tick(now); ok {
			t.Fatalf("a change was reported %v after the last one: %+v", now.Sub(last), s)
		}
	}
	now = feed(d, now, 40*time.Millisecond, map[string]uint8{"a": 127, "b": 0})
	if s, ok := d.Tick(now); !ok || len(s) == 0 || s[0].PeerID != "b" {
		t.Fatalf("change after the interval: %+v %v", s, ok)
	}
}

func TestSpeakerDetectorHysteresis(t *testing.T) {
	d := NewSpeakerDetector()
	now := time.Unix(1000, 0)
	now = feed(d, now, time.Second, map[string]uint8{"a": 30, "b": 40})
	if s, _ := d.Tick(now); s[0].PeerID != "a" {
		t.Fatalf("%+v, want a first", s)
	}
	// b becomes a hair louder than a: a keeps the first place.
	now = feed(d, now, time.Second, map[string]uint8{"a": 30, "b": 29})
	if s, ok := d.Tick(now); ok && s[0].PeerID != "a" {
		t.Fatalf("%+v: a near tie took the first place", s)
	}
}

func TestLoudness(t *testing.T) {
	if loudness(127) != 0 || loudness(loudnessFloor) != 0 || loudness(0) != 1 {
		t.Fatal("loudness ends wrong")
	}
	if !(loudness(20) > loudness(40)) {
		t.Fatal("loudness not monotonic")
	}
}

// A room's measurement goroutines stop with it, and closing twice is safe.
func TestRoomCloseStopsMeters(t *testing.T) {
	e := &Engine{log: slog.Default()}
	r := e.NewRoom("r", nil)
	r.Close()
	r.Close()
	select {
	case <-r.speakerLoop.done:
	default:
		t.Fatal("speaker loop still running")
	}
	select {
	case <-r.quality.done:
	default:
		t.Fatal("quality monitor still running")
	}
}
