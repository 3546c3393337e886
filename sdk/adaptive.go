package sdk

import (
	"fmt"
	"sync"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// adaptive is the room's adaptive-quality state: what to call when the
// server pauses a video this bot receives.
type adaptive struct {
	mu       sync.Mutex
	onPaused func(trackID string, paused bool, reason string)
}

// RenderSize is how a bot shows one video it receives, in CSS pixels (0,
// 0: no preference). Hidden: not shown at all, so the server sends
// nothing. Pinned: the user pinned it, so the server serves it before
// other videos (but after screen shares and the active speaker) when the
// downlink cannot carry everything at the best layer.
type RenderSize struct {
	Width, Height  int
	Hidden, Pinned bool
}

// SetRenderSize tells the server how large this bot shows a video it
// receives (0, 0: no preference), or that it does not show it at all
// (hidden): the server then sends the smallest layer that fills that size,
// or nothing. trackID is the server's id (RemoteTrack.Info.ID).
func (r *Room) SetRenderSize(trackID string, width, height int, hidden bool) error {
	return r.SetRender(trackID, RenderSize{Width: width, Height: height, Hidden: hidden})
}

// SetRender tells the server how this bot shows a video it receives: its
// size, whether it is hidden, whether it is pinned. Each call replaces
// what the server knew about that video. The server takes at most 50 a
// second; sizes run from 0 to 16384.
func (r *Room) SetRender(trackID string, s RenderSize) error {
	m := &protocol.RenderSize{TrackID: trackID, Width: s.Width, Height: s.Height, Hidden: s.Hidden, Pinned: s.Pinned}
	if err := r.sendSignal(m); err != nil {
		return fmt.Errorf("render size: %w", err)
	}
	return nil
}

// OnVideoPaused is told when the server pauses a video this bot receives
// (reason protocol.PauseBandwidth or PauseHidden) and when it resumes it.
func (r *Room) OnVideoPaused(f func(trackID string, paused bool, reason string)) {
	r.adapt.mu.Lock()
	r.adapt.onPaused = f
	r.adapt.mu.Unlock()
}

// handleAdaptive dispatches the adaptive-quality family of server
// messages; it reports whether m was one.
func (r *Room) handleAdaptive(m any) bool {
	switch m := m.(type) {
	case *protocol.VideoPaused:
		r.adapt.mu.Lock()
		f := r.adapt.onPaused
		r.adapt.mu.Unlock()
		if f != nil {
			f(m.TrackID, m.Paused, m.Reason)
		}
	case *protocol.PublishLayers:
		r.mu.Lock()
		var st *SimulcastTrack
		for _, t := range r.tracks {
			if s, ok := t.(*SimulcastTrack); ok && s.ID() == m.ClientTrackID {
				st = s
			}
		}
		r.mu.Unlock()
		if st == nil {
			return true
		}
		for _, l := range m.Layers {
			for i, rid := range SimulcastRIDs {
				if rid == l.RID {
					st.setPaused(i, !l.Active)
				}
			}
		}
	default:
		return false
	}
	return true
}
