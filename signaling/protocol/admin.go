package protocol

// Error codes of operator actions (the admin API). Both end the
// connection with close code 1008 and the code as the reason; a client
// must not reconnect.
const (
	CodeRemoved    = "removed"     // an admin removed the participant; its token is refused from now on
	CodeRoomClosed = "room_closed" // an admin closed the room
)
