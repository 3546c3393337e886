package sfu

import "github.com/pion/webrtc/v4"

// NewPeerConnection makes a PeerConnection on the engine's media ports,
// codecs and interceptors, for gateways (WHIP, WHEP) whose clients speak
// to the node without being peers of a room themselves.
func (e *Engine) NewPeerConnection() (*webrtc.PeerConnection, error) {
	return e.newPeerConnection(nil)
}
