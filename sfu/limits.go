package sfu

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// ErrLimit wraps input refused because a per-participant bound was hit;
// nothing of it was stored.
var ErrLimit = errors.New("limit reached")

// ErrNoTrack: a request names a track the participant does not receive.
var ErrNoTrack = errors.New("no such track")

// ErrBadSize: a render size out of range.
var ErrBadSize = errors.New("render size out of range")

const (
	// MaxPendingCandidates bounds the candidates held for one
	// PeerConnection until its remote description arrives.
	MaxPendingCandidates = 64
	// MaxSources bounds the entries of one offer's sources map.
	MaxSources = 16
	// MaxMediaSections bounds the m-sections of a publisher offer: each
	// is a transceiver, and each track in it goroutines and a packet
	// cache on the server. The page uses five (camera, microphone,
	// screen, screen audio, data); the rest is room for a client that
	// renegotiates without recycling its stopped transceivers.
	MaxMediaSections = 32
	maxTrackIDLen    = 128
)

// checkSources refuses a sources map that is too big or names unknown
// sources, before anything of it is kept.
func checkSources(sources map[string]string) error {
	if len(sources) > MaxSources {
		return fmt.Errorf("%w: %d sources in one offer, at most %d", ErrLimit, len(sources), MaxSources)
	}
	for id, src := range sources {
		if len(id) > maxTrackIDLen {
			return fmt.Errorf("%w: source track id longer than %d bytes", ErrLimit, maxTrackIDLen)
		}
		if !protocol.ValidSource(src) {
			return fmt.Errorf("%w: unknown source %q", ErrBadSDP, src)
		}
	}
	return nil
}

// offeredTracks are the msid track ids of an offer's media sections.
func offeredTracks(d *sdp.SessionDescription) map[string]bool {
	out := map[string]bool{}
	for _, m := range d.MediaDescriptions {
		for _, a := range m.Attributes {
			if a.Key != "msid" {
				continue
			}
			if _, track, ok := strings.Cut(a.Value, " "); ok {
				out[track] = true
			}
		}
	}
	return out
}

// keepSources is the sources map after an offer: only the tracks the offer
// still has, the new entries winning.
func keepSources(old, offered map[string]string, tracks map[string]bool) map[string]string {
	out := map[string]string{}
	for id, src := range old {
		if tracks[id] {
			out[id] = src
		}
	}
	for id, src := range offered {
		if tracks[id] {
			out[id] = src
		}
	}
	return out
}
