package sfu

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"

	"github.com/pion/webrtc/v4"
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
	layers map[string]*Forwarder // simulcast tracks by publisher id + client track id

	// Speaker and quality measurement (speaker.go, quality.go).
	speakers    *SpeakerDetector
	speakerLoop *speakerLoop
	quality     *qualityMonitor
	alloc       *allocLoop // allocator.go
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
		layers: map[string]*Forwarder{},
	}
	r.speakers = NewSpeakerDetector()
	r.speakerLoop = startSpeakerLoop(r.speakers, events)
	r.quality = startQualityMonitor(events)
	r.startAllocator()
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
	r.stopAllocator()
}

func (r *Room) publish(from *Peer, f *Forwarder) {
	r.mu.Lock()
	if r.peers[from.id] != from {
		r.forgetLayersLocked(f)
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
		f.drainRTCP(f.base.rid)
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
	r.forgetLayersLocked(f)
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

// addLayer attaches a simulcast layer to the forwarder of its client track
// and starts reading it. It reports false when f, a new forwarder made for
// this layer, is the track's first: the caller publishes it. Layers that fit
// nowhere are read and dropped, so that Pion's buffers never fill.
func (r *Room) addLayer(from *Peer, f *Forwarder, remote *webrtc.TrackRemote) bool {
	k := from.id + "/" + remote.ID()
	r.mu.Lock()
	first := r.layers[k]
	if first == nil {
		r.layers[k] = f
	}
	r.mu.Unlock()
	if first == nil {
		return false
	}
	l := newSimLayer(layerIndex(remote.RID()), remote.RID(), remote, uint32(remote.SSRC()), remote.Kind())
	if !first.attach(l) {
		from.goDrain(remote)
		return true
	}
	r.log.Info("simulcast layer", "track", first.info.ID, "rid", remote.RID(), "layer", l.index)
	from.wg.Add(2)
	go func() {
		defer from.wg.Done()
		first.drainRTCP(l.rid)
	}()
	go func() {
		defer from.wg.Done()
		first.runLayer(l)
	}()
	return true
}

func (r *Room) forgetLayersLocked(f *Forwarder) {
	if k := f.info.PublisherID + "/" + f.info.ClientID; r.layers[k] == f {
		delete(r.layers, k)
	}
}

func randomID() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b)
}

// SubscribedVideo is what the server does with one video for one
// subscriber: the simulcast layer it forwards (-1 before its first
// packet, 0 for a track without simulcast), whether the allocator paused
// it, and the tile the subscriber last reported for it.
type SubscribedVideo struct {
	Layer          int
	Paused         bool
	Width, Height  int
	Hidden, Pinned bool
}

// SubscribedVideo reports how a subscriber receives a track, for tests
// and tools that check what it really gets; ok is false when it does not
// receive that track.
func (r *Room) SubscribedVideo(subscriberID, trackID string) (v SubscribedVideo, ok bool) {
	r.mu.Lock()
	p := r.peers[subscriberID]
	r.mu.Unlock()
	if p == nil {
		return v, false
	}
	p.negMu.Lock()
	d := p.downs[trackID]
	p.negMu.Unlock()
	if d == nil {
		return v, false
	}
	d.mu.Lock()
	s := d.alloc.size
	d.mu.Unlock()
	return SubscribedVideo{Layer: d.CurrentLayer(), Paused: d.paused.Load(), Width: s.width, Height: s.height, Hidden: s.hidden, Pinned: s.pinned}, true
}
