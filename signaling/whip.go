package signaling

import (
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/whip"
)

// startWHIP makes the WHIP and WHEP endpoints: their sessions join rooms
// through this node's own WebSocket, with the client's bearer token, so
// they get exactly the grants and limits of any participant.
func (s *Server) startWHIP() *whip.Server {
	media := s.media
	return whip.New(s.ctx, whip.Config{
		Verify:            s.keys.Verify,
		ServerURL:         s.URL,
		NewPeerConnection: func() (*webrtc.PeerConnection, error) { return media.NewPeerConnection() },
		Logger:            s.log.With("part", "whip"),
	})
}
