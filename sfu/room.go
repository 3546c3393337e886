package sfu

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
)

// RoomEvents are told about published and ended tracks, so that signaling
// can announce them. They are called before the subscribers' offers go out.
type RoomEvents interface {
	TrackPublished(t TrackInfo)
	TrackUnpublished(t TrackInfo)
}

// Room routes the media of one room: every published track goes to every
// other peer that may subscribe.
type Room struct {
	engine *Engine
	name   string
	events RoomEvents
	log    *slog.Logger

	mu     sync.Mutex
	peers  map[string]*Peer
	tracks map[string]*Forwarder // by track id
	layers map[string]bool       // publisher id + client track id of simulcast tracks already forwarded

	// Speaker and quality measurement (speaker.go, quality.go).
	speakers    *SpeakerDetector
	speakerLoop *speakerLoop
	quality     *qualityMonitor
}

// NewRoom makes the media router of one room.
func (e *Engine) NewRoom(name string, events RoomEvents) *Room {
	r := &Room{
		engine: e,
		name:   name,
		events: events,
		log:    e.log.With("room", name),
		peers:  map[string]*Peer{},
		tracks: map[string]*Forwarder{},
		layers: map[string]bool{},
	}
	r.speakers = NewSpeakerDetector()
	r.speakerLoop = startSpeakerLoop(r.speakers, events)
	r.quality = startQualityMonitor(events)
	return r
}

// AddPeer creates a participant's PeerConnections and subscribes them to
// every track already in the room.
func (r *Room) AddPeer(id string, sig Signaler, opts PeerOptions) (*Peer, error) {
	p, err := newPeer(r, id, sig, opts)
	if err != nil {
		return nil, fmt.Errorf("room %s: %w", r.name, err)
	}
	r.mu.Lock()
	if _, dup := r.peers[id]; dup {
		r.mu.Unlock()
		p.close()
		return nil, fmt.Errorf("room %s: peer %s already present", r.name, id)
	}
	r.peers[id] = p
	existing := make([]*Forwarder, 0, len(r.tracks))
	for _, f := range r.tracks {
		existing = append(existing, f)
	}
	r.mu.Unlock()
	p.subscribe(existing)
	return p, nil
}

// RemovePeer closes a participant's media. Its tracks end, which removes
// them from everyone else.
func (r *Room) RemovePeer(id string) {
	r.mu.Lock()
	p := r.peers[id]
	delete(r.peers, id)
	r.mu.Unlock()
	if p != nil {
		p.close()
	}
	r.speakers.Forget(id)
	r.quality.forget(id)
}

// Tracks lists the tracks a participant publishes now.
func (r *Room) Tracks(publisherID string) []TrackInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []TrackInfo
	for _, f := range r.tracks {
		if f.info.PublisherID == publisherID {
			out = append(out, f.info)
		}
	}
	return out
}

// Close ends every peer.
func (r *Room) Close() {
	r.mu.Lock()
	peers := r.peers
	r.peers = map[string]*Peer{}
	r.mu.Unlock()
	for _, p := range peers {
		p.close()
	}
	r.speakerLoop.close()
	r.quality.close()
}

func (r *Room) publish(from *Peer, f *Forwarder) {
	r.mu.Lock()
	if r.peers[from.id] != from {
		r.mu.Unlock()
		from.goDrain(f.remote)
		return
	}
	r.tracks[f.info.ID] = f
	others := make([]*Peer, 0, len(r.peers))
	for _, p := range r.peers {
		if p != from {
			others = append(others, p)
		}
	}
	r.mu.Unlock()

	// The publisher's peer owns the track's goroutines and waits for them
	// at close; the track ends with its PeerConnection.
	from.wg.Add(2)
	go func() {
		defer from.wg.Done()
		f.drainRTCP()
	}()
	go func() {
		defer from.wg.Done()
		f.run()
		r.unpublish(f)
	}()
	r.log.Info("track published", "track", f.info.ID, "publisher", from.id, "kind", f.info.Kind, "codec", f.info.Codec, "source", f.info.Source)
	r.events.TrackPublished(f.info)
	for _, p := range others {
		p.subscribe([]*Forwarder{f})
	}
}

func (r *Room) unpublish(f *Forwarder) {
	r.mu.Lock()
	delete(r.tracks, f.info.ID)
	peers := make([]*Peer, 0, len(r.peers))
	for _, p := range r.peers {
		peers = append(peers, p)
	}
	r.mu.Unlock()
	r.log.Info("track ended", "track", f.info.ID, "publisher", f.info.PublisherID)
	r.events.TrackUnpublished(f.info)
	for _, p := range peers {
		p.unsubscribe(f.info.ID)
	}
}

// firstLayer reports whether this is the first simulcast layer of a client
// track, and remembers it.
func (r *Room) firstLayer(peerID, clientTrackID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := peerID + "/" + clientTrackID
	if r.layers[k] {
		return false
	}
	r.layers[k] = true
	return true
}

func randomID() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b)
}
