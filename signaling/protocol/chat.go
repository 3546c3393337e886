package protocol

// Chat message types.
const (
	TypeChat        = "chat"        // client: send a chat message
	TypeChatMessage = "chatMessage" // server: a stored chat message (a room event)
)

// Limits on chat input.
const (
	MaxChatLen     = 4000 // code points of one message
	MaxClientIDLen = 64
	// ChatHistory is how many recent messages joined carries.
	ChatHistory = 100
)

// Chat asks the server to post a message to the room. ClientID is the
// sender's own id for it: a resend after a reconnect with the same
// ClientID is stored once.
type Chat struct {
	ClientID string `json:"clientId"`
	Text     string `json:"text"`
}

// ChatMessage is a posted message. ID is the server's; clients drop a
// message whose ID they already have (delivery is at least once).
type ChatMessage struct {
	ID       string `json:"id"`
	ClientID string `json:"clientId,omitempty"`
	From     string `json:"from"` // participant id
	Identity string `json:"identity"`
	Name     string `json:"name"`
	Text     string `json:"text"`
	TS       int64  `json:"ts"` // server time, Unix ms
}

func init() {
	register(TypeChat, func() any { return &Chat{} })
	register(TypeChatMessage, func() any { return &ChatMessage{} })
}
