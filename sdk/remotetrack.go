package sdk

import (
	"errors"
	"fmt"

	"github.com/pion/rtcp"
)

// RequestKeyframe asks the track's publisher (through the server) for a
// keyframe. A recorder calls it when a track starts, so that its file
// begins with a picture a player can decode; the server merges requests
// from many subscribers.
func (t *RemoteTrack) RequestKeyframe() error {
	if t.pc == nil {
		return errors.New("request keyframe: the track was not received through a room")
	}
	if err := t.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.Track.SSRC())}}); err != nil {
		return fmt.Errorf("request keyframe for track %s: %w", t.Info.ID, err)
	}
	return nil
}
