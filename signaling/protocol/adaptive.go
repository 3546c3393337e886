package protocol

// The adaptive-quality family: what a subscriber says about how it shows
// each video, and what the server's allocator tells subscribers and
// publishers. Kept apart from protocol.go, like the other families.

// Adaptive-quality message types.
const (
	TypeRenderSize    = "renderSize"    // client: how large it shows one video it receives
	TypeVideoPaused   = "videoPaused"   // server: a video this client receives is paused or resumed
	TypePublishLayers = "publishLayers" // server: which simulcast layers of a track to encode (dynacast)
)

// Reasons a video is paused.
const (
	PauseBandwidth = "bandwidth" // the client's downlink cannot carry even the lowest layer
	PauseHidden    = "hidden"    // the client reported the tile hidden
)

// RenderSize reports the size, in CSS pixels, at which the client shows a
// video track it receives; Hidden when it is not shown at all (the server
// then stops sending it), Pinned when the user pinned it (it is served
// before others). Width and height of 0 mean "no preference".
type RenderSize struct {
	TrackID string `json:"trackId"`
	Width   int    `json:"width"`
	Height  int    `json:"height"`
	Hidden  bool   `json:"hidden,omitempty"`
	Pinned  bool   `json:"pinned,omitempty"`
}

// VideoPaused tells a subscriber that the server paused a video it
// receives, and why, or that it resumed it. Audio is never paused.
type VideoPaused struct {
	TrackID string `json:"trackId"`
	Paused  bool   `json:"paused"`
	Reason  string `json:"reason,omitempty"` // PauseBandwidth or PauseHidden
}

// Layer is one simulcast encoding of a track, by rid.
type Layer struct {
	RID    string `json:"rid"`
	Active bool   `json:"active"`
}

// PublishLayers tells a publisher which encodings of one of its simulcast
// tracks anyone receives: it should stop encoding the inactive ones (a
// browser sets the encoding inactive) and restart them, from a keyframe,
// when told they are active again.
type PublishLayers struct {
	TrackID       string  `json:"trackId"`       // the server's id
	ClientTrackID string  `json:"clientTrackId"` // the publisher's own (msid) track id
	Layers        []Layer `json:"layers"`
}

func init() {
	register(TypeRenderSize, func() any { return &RenderSize{} })
	register(TypeVideoPaused, func() any { return &VideoPaused{} })
	register(TypePublishLayers, func() any { return &PublishLayers{} })
}
