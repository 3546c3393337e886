package protocol

// Keepalive message types. The server's WebSocket pings are answered by
// the browser itself, out of the page's sight; a client that wants to know
// that the server still hears it sends ping, and any message back (pong
// among them) says so.
const (
	TypePing = "ping" // client: answered by pong, before or after the join
	TypePong = "pong" // server: answers a ping, echoing its id
)

// MaxPingIDLen bounds a ping's id (bytes), which the pong echoes.
const MaxPingIDLen = 64

// Ping asks the server for a pong. ID is the client's to choose (at most
// MaxPingIDLen bytes), to match the pong to its ping.
type Ping struct {
	ID string `json:"id,omitempty"`
}

// Pong answers a Ping with the same ID.
type Pong struct {
	ID string `json:"id,omitempty"`
}

func init() {
	register(TypePing, func() any { return &Ping{} })
	register(TypePong, func() any { return &Pong{} })
}
