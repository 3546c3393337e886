package sdk

import (
	"encoding/json"
	"time"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// The documents heartbeat: while a collab channel is up, the client says
// it is there every protocol.HeartbeatInterval, so that the server keeps
// it in document presence (a client silent for protocol.PresenceExpiry
// drops out). The loop belongs to the link it beats on: down() stops it,
// and the room's shutdown waits for it.

var heartbeatMsg, _ = json.Marshal(&protocol.DocRequest{Type: protocol.DocTypeHeartbeat})

// startBeatLocked starts the heartbeat of a link that just came up; under d.mu.
func (d *Docs) startBeatLocked(l msgLink) {
	d.stopBeatLocked()
	stop := make(chan struct{})
	d.beatStop = stop
	d.beats.Add(1)
	go func() {
		defer d.beats.Done()
		t := time.NewTicker(d.beatEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-d.room.ctx.Done():
				return
			case <-t.C:
				// Lossy on purpose: when the channel is too busy to take
				// it now, the client is sending anyway.
				l.trySend(heartbeatMsg)
			}
		}
	}()
}

// stopBeatLocked stops the current heartbeat, if any; under d.mu.
func (d *Docs) stopBeatLocked() {
	if d.beatStop != nil {
		close(d.beatStop)
		d.beatStop = nil
	}
}

// StopHeartbeat stops the documents heartbeat until the next reconnect,
// as a client that froze would. For tests.
func (d *Docs) StopHeartbeat() {
	d.mu.Lock()
	d.stopBeatLocked()
	d.mu.Unlock()
}
