package sfu

// renderSize is what a subscriber reported about one video's tile.
type renderSize struct {
	width, height int
	hidden        bool
	pinned        bool
}

// SetRenderSize records how large a subscriber shows one video (in CSS
// pixels), whether it is hidden, and whether the user pinned it. The
// allocator never sends a layer much larger than the tile, nothing to a
// hidden tile, and serves pinned tiles before the rest.
func (p *Peer) SetRenderSize(trackID string, width, height int, hidden, pinned bool) error {
	p.negMu.Lock()
	d := p.downs[trackID]
	p.negMu.Unlock()
	if d == nil {
		return ErrNoTrack
	}
	if width < 0 || height < 0 || width > 1<<14 || height > 1<<14 {
		return ErrBadSize
	}
	d.mu.Lock()
	d.alloc.size = renderSize{width: width, height: height, hidden: hidden, pinned: pinned}
	d.alloc.sized = true
	d.mu.Unlock()
	p.room.kickAllocator()
	return nil
}

// layerForSize is the lowest layer at least as tall as the tile (with 10%
// slack), or the highest there is. Layer heights come from keyframes; a
// layer whose height is unknown counts as a quarter, half and full of 720.
func (f *Forwarder) layerForSize(s renderSize) int8 {
	if s.height <= 0 && s.width <= 0 {
		return maxLayers - 1
	}
	for i := range int8(maxLayers) {
		l := f.layer(i)
		if l == nil {
			continue
		}
		w, h := int(l.width.Load()), int(l.height.Load())
		if h == 0 {
			h, w = 180<<i, 320<<i
		}
		if h*10 >= s.height*9 && w*10 >= s.width*9 {
			return i
		}
	}
	return maxLayers - 1
}
