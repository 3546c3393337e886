package signaling

import (
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/protocol"
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
		ICEServers:        s.iceServersFor,
		Logger:            s.log.With("part", "whip"),
	})
}

// iceServersFor are the configured ICE servers plus TURN credentials for
// one identity, for a client that reached this node at host: WebSocket
// participants (session.iceServers) and WHIP/WHEP sessions alike.
func (s *Server) iceServersFor(host, identity string) []protocol.ICEServer {
	out := append([]protocol.ICEServer{}, s.cfg.ICEServers...) // never null on the wire
	if s.turn == nil {
		return out
	}
	for _, is := range s.turn.ICEServers(host, s.turn.Credentials(identity)) {
		out = append(out, protocol.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Credential})
	}
	return out
}
