package sfu

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestPinnedRenderSizeOrdersVideos: a subscriber's pin, which arrives with
// its render size, puts that video after screen shares and the active
// speaker and before every other video in the allocator's order; a size
// out of range or an unknown track is refused and changes nothing.
func TestPinnedRenderSizeOrdersVideos(t *testing.T) {
	var plis atomic.Int64
	r := &Room{alloc: &allocLoop{kick: make(chan struct{}, 1)}}
	p := &Peer{room: r, downs: map[string]*DownTrack{}}
	video := func(id, publisher, source string) *DownTrack {
		f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
		f.info.ID, f.info.PublisherID, f.info.Source = id, publisher, source
		d := newDownTrack(f, nil, nil)
		p.downs[id] = d
		return d
	}
	rest := video("TR_rest", "PA_c", "camera")
	pinned := video("TR_pinned", "PA_d", "camera")
	speaker := video("TR_speaker", "PA_b", "camera")
	screen := video("TR_screen", "PA_a", "screen")

	if err := p.SetRenderSize("TR_pinned", 640, 360, false, true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.alloc.kick:
	default:
		t.Error("a render size did not wake the allocator")
	}
	order := []*DownTrack{rest, pinned, speaker, screen}
	for _, d := range order {
		d.allocSize = d.alloc.size // as the allocation loop takes it
	}
	slices.SortStableFunc(order, func(a, b *DownTrack) int { return priority(a, "PA_b") - priority(b, "PA_b") })
	want := []*DownTrack{screen, speaker, pinned, rest}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("position %d: %s, want %s", i, order[i].ID(), want[i].ID())
		}
	}
	if s := pinned.alloc.size; s != (renderSize{width: 640, height: 360, pinned: true}) {
		t.Errorf("stored %+v", s)
	}

	// Unpinning takes the place away again.
	if err := p.SetRenderSize("TR_pinned", 640, 360, false, false); err != nil {
		t.Fatal(err)
	}
	pinned.allocSize = pinned.alloc.size
	if priority(pinned, "PA_b") != priority(rest, "PA_b") {
		t.Error("an unpinned video still goes before the rest")
	}

	for _, c := range []struct{ w, h int }{{-1, 10}, {10, -1}, {1<<14 + 1, 10}, {10, 1<<14 + 1}} {
		if err := p.SetRenderSize("TR_rest", c.w, c.h, false, true); !errors.Is(err, ErrBadSize) {
			t.Errorf("size %dx%d: %v, want ErrBadSize", c.w, c.h, err)
		}
	}
	if rest.alloc.size.pinned || rest.alloc.sized {
		t.Errorf("a refused size was kept: %+v", rest.alloc.size)
	}
	if err := p.SetRenderSize("TR_gone", 10, 10, false, true); !errors.Is(err, ErrNoTrack) {
		t.Errorf("unknown track: %v, want ErrNoTrack", err)
	}
}

// dynEvents records what dynacast tells publishers.
type dynEvents struct{ told [][]bool }

func (e *dynEvents) TrackPublished(TrackInfo)                 {}
func (e *dynEvents) TrackUnpublished(TrackInfo)               {}
func (e *dynEvents) VideoPaused(string, string, bool, string) {}
func (e *dynEvents) PublishLayers(_ TrackInfo, _ []string, active []bool) {
	e.told = append(e.told, slices.Clone(active))
}

// TestDynacastTellsOfLateLayer: a layer that starts arriving after the
// publisher was told to stop the others (nobody watches) is stopped too,
// rather than encoded for nobody.
func TestDynacastTellsOfLateLayer(t *testing.T) {
	var plis atomic.Int64
	ev := &dynEvents{}
	r := &Room{events: ev}
	f := testForwarder(webrtc.RTPCodecTypeVideo, &plis)
	f.attach(newSimLayer(1, "h", nil, 1235, webrtc.RTPCodecTypeVideo))
	sent := map[*Forwarder][maxLayers]bool{}
	r.dynacast([]*Forwarder{f}, sent)
	if len(ev.told) != 1 || !slices.Equal(ev.told[0], []bool{false, false}) {
		t.Fatalf("told %v, want both layers stopped", ev.told)
	}
	r.dynacast([]*Forwarder{f}, sent)
	if len(ev.told) != 1 {
		t.Fatalf("told %v: nothing changed, yet the publisher was told again", ev.told)
	}
	late := newSimLayer(2, "f", nil, 1236, webrtc.RTPCodecTypeVideo)
	f.attach(late)
	r.dynacast([]*Forwarder{f}, sent)
	if len(ev.told) != 2 || !slices.Equal(ev.told[1], []bool{false, false, false}) {
		t.Fatalf("told %v, want the late layer stopped too", ev.told)
	}
	if !late.paused.Load() {
		t.Error("the late layer is not marked paused")
	}
}
