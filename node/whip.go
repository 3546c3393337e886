package node

import (
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/protocol"
	"github.com/huddle-rtc/huddle/whip"
)

// startWHIP makes the WHIP and WHEP endpoints: their sessions join rooms
// through this node's own WebSocket, with the client's bearer token, so
// they get exactly the grants and limits of any participant.
func (n *Node) startWHIP() *whip.Server {
	media := n.media
	return whip.New(n.ctx, whip.Config{
		Verify:            n.keys.Verify,
		ServerURL:         n.URL,
		NewPeerConnection: func() (*webrtc.PeerConnection, error) { return media.NewPeerConnection() },
		ICEServers:        n.iceServersFor,
		Logger:            n.log.With("part", "whip"),
	})
}

// iceServersFor are the configured ICE servers plus TURN credentials for
// one identity, for a client that reached this node at host: WebSocket
// participants (signaling.Config.ICEServers) and WHIP/WHEP sessions alike.
func (n *Node) iceServersFor(host, identity string) []protocol.ICEServer {
	out := append([]protocol.ICEServer{}, n.cfg.ICEServers...) // never null on the wire
	if n.turn == nil {
		return out
	}
	for _, is := range n.turn.ICEServers(host, n.turn.Credentials(identity)) {
		out = append(out, protocol.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Credential})
	}
	return out
}
