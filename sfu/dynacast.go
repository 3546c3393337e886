package sfu

import "github.com/pion/webrtc/v4"

// dynacast tells publishers which layers anyone still needs: a layer no
// subscriber gets or switches to is paused at its encoder, and resumed as
// soon as one does.
func (r *Room) dynacast(fs []*Forwarder, sent map[*Forwarder][maxLayers]bool) {
	ev, ok := r.events.(AdaptiveEvents)
	live := map[*Forwarder]bool{}
	for _, f := range fs {
		live[f] = true
		if f.kind != webrtc.RTPCodecTypeVideo || f.Layers() < 2 {
			continue
		}
		var want [maxLayers]bool
		for _, d := range *f.downs.Load() {
			if d.paused.Load() {
				continue
			}
			want[d.target.Load()] = true
			if c := d.cur.Load(); c >= 0 {
				want[c] = true
			}
		}
		// A layer not received yet counts as active, as its publisher
		// keeps it until told otherwise: when it appears (a browser starts
		// its layers as its bandwidth estimate grows), the publisher hears
		// whether anyone wants it.
		for i := range want {
			if f.layer(int8(i)) == nil {
				want[i] = true
			}
		}
		prev, had := sent[f]
		if !had {
			prev = [maxLayers]bool{true, true, true}
		}
		if want == prev {
			continue
		}
		sent[f] = want
		for i := range want {
			if l := f.layer(int8(i)); l != nil {
				l.paused.Store(!want[i])
			}
		}
		if ok {
			rids := make([]string, 0, maxLayers)
			active := make([]bool, 0, maxLayers)
			for i := range int8(maxLayers) {
				if l := f.layer(i); l != nil {
					rids = append(rids, l.rid)
					active = append(active, want[i])
				}
			}
			ev.PublishLayers(f.info, rids, active)
		}
	}
	for f := range sent {
		if !live[f] {
			delete(sent, f)
		}
	}
}
