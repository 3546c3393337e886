package session

// What a session needs of the transport that carries it (package
// datachannel): a writer for the collab channel, and a lossy sender for the
// cursors channel.

// Outbox is the writer of one collab channel. The transport bounds what it
// queues: answers are never dropped (a peer that cannot take them is cut
// off), a document stream's ops may be dropped as a whole when the peer
// falls behind.
type Outbox interface {
	// Send queues an answer, error or notice. False: the peer was cut off.
	Send(msg []byte) bool
	// SendStream queues a message read from r (at most limit bytes) in
	// chunk frames as the channel drains, so that a message larger than
	// the queue, such as a big document's snapshot, never sits in it
	// whole. False: the peer was cut off.
	SendStream(r Stream) bool
	// SendOp queues an op or ack of stream f. False: f's ops were
	// dropped (f lags) or f was retired; f must end.
	SendOp(f Flow, msg []byte) bool
	// Lag drops f's queued ops and queues f's lagging notice.
	Lag(f Flow)
	// Retire drops f's queued ops silently: nothing more of f may go out.
	Retire(f Flow)
	// Forget releases the transport's bookkeeping of an ended f.
	Forget(f Flow)
}

// Stream is a message produced piece by piece: Read fills p as io.Reader
// does and returns io.EOF after the last piece.
type Stream interface {
	Read(p []byte) (int, error)
}

// Flow is one document subscription's stream of ops, as the transport sees
// it.
type Flow interface {
	// LagNotice is queued in place of f's dropped ops.
	LagNotice() []byte
	// Drop ends the subscription after its ops were dropped.
	Drop()
}

// Link is what the session server needs of a participant's transport
// outside the collab channel: a lossy send on the cursors channel.
type Link interface {
	// SendCursor passes a cursor on, or drops it when the channel is not
	// open or backed up (the next one replaces it).
	SendCursor(msg []byte)
}
