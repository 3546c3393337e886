package sfu

// PauseTrack stops (or resumes) forwarding a published track to every
// subscriber, whatever its publisher sends: what an admin's mute needs,
// since a client cannot be trusted to stop sending. The publisher's
// packets are still read (Pion's buffers must drain) and measured. On
// resume a video track asks its publisher for a keyframe, since its
// subscribers missed the pictures in between. It reports whether the
// track exists.
func (r *Room) PauseTrack(trackID string, paused bool) bool {
	r.mu.Lock()
	f := r.tracks[trackID]
	r.mu.Unlock()
	if f == nil {
		return false
	}
	if f.paused.Swap(paused) && !paused {
		f.RequestKeyframe()
	}
	return true
}

// TrackPaused reports whether an admin paused the track.
func (r *Room) TrackPaused(trackID string) bool {
	r.mu.Lock()
	f := r.tracks[trackID]
	r.mu.Unlock()
	return f != nil && f.paused.Load()
}

// PublishedBytes sums, by publisher, the RTP bytes read of the tracks in
// the room now; PublishedTracks lists them.
func (r *Room) PublishedBytes() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.peers))
	for _, f := range r.tracks {
		out[f.info.PublisherID] += f.bytes.Load()
	}
	return out
}

// ForwardedBytes sums, by subscriber, the RTP bytes of media sent to each
// peer in the room now: its send path's first sends, the counter behind
// huddle_media_bytes_sent_total (retransmissions and probe padding are
// not media and are left out). It is PublishedBytes' counterpart. A peer
// that has never been sent anything has no send path and counts 0.
func (r *Room) ForwardedBytes() map[string]uint64 {
	r.mu.Lock()
	peers := make([]*Peer, 0, len(r.peers))
	for _, p := range r.peers {
		peers = append(peers, p)
	}
	r.mu.Unlock()
	out := make(map[string]uint64, len(peers))
	for _, p := range peers {
		p.negMu.Lock()
		if p.path != nil {
			out[p.id] = p.path.bytes.Load()
		}
		p.negMu.Unlock()
	}
	return out
}

// AllTracks lists every track published in the room now.
func (r *Room) AllTracks() []TrackInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]TrackInfo, 0, len(r.tracks))
	for _, f := range r.tracks {
		out = append(out, f.info)
	}
	return out
}
