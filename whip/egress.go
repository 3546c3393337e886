package whip

import (
	"fmt"
	"strings"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/sdk"
)

// egress is one track a WHEP client receives. The room may hold several
// tracks of its kind: the client gets one at a time (the first to arrive),
// and the next when that one ends, with sequence numbers and timestamps
// carried on so the client's jitter buffer sees one stream.
type egress struct {
	local *webrtc.TrackLocalStaticRTP
	mime  string

	mu      sync.Mutex
	active  *sdk.RemoteTrack
	live    []*sdk.RemoteTrack
	rebase  bool
	started bool
	seqOff  uint16
	tsOff   uint32
	lastSeq uint16
	lastTS  uint32
}

// addEgress makes the WHEP client's tracks, one per kind it offered to
// receive, before the offer is applied (pion pairs them with the offer's
// sections). Video goes in the codec of the room's first video track.
func (ss *session) addEgress(kinds map[string]bool) error {
	video := sdk.VP8
	if codec := roomVideoCodec(ss.room); strings.EqualFold(codec, webrtc.MimeTypeH264) {
		video = sdk.H264
	} else if codec != "" {
		video = webrtc.RTPCodecCapability{MimeType: codec, ClockRate: 90000}
	}
	for kind, codec := range map[string]webrtc.RTPCodecCapability{"audio": sdk.Opus, "video": video} {
		if !kinds[kind] {
			continue
		}
		local, err := webrtc.NewTrackLocalStaticRTP(codec, kind, "huddle")
		if err != nil {
			return fmt.Errorf("whep %s track: %w", kind, err)
		}
		tr, err := ss.pc.AddTransceiverFromTrack(local, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fmt.Errorf("whep %s track: %w", kind, err)
		}
		e := &egress{local: local, mime: codec.MimeType}
		ss.out[kind] = e
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			e.readRTCP(tr.Sender())
		}()
	}
	return nil
}

// roomVideoCodec is the codec of a video track in the room, or "".
func roomVideoCodec(room *sdk.Room) string {
	for _, p := range room.Participants() {
		for _, t := range p.Tracks {
			if t.Kind == "video" && t.Codec != "" {
				return t.Codec
			}
		}
	}
	return ""
}

// readRTCP passes the client's keyframe requests to the active track.
func (e *egress) readRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				e.mu.Lock()
				a := e.active
				e.mu.Unlock()
				if a != nil {
					_ = a.RequestKeyframe()
				}
			}
		}
	}
}

// onRoomTrack (WHEP) reads a room track until it ends, forwarding it while
// it is the active one of its kind.
func (ss *session) onRoomTrack(t *sdk.RemoteTrack) {
	select { // the answer (and so the egress tracks) comes after the join
	case <-ss.ready:
	case <-ss.ctx.Done():
		drainRemote(t)
		return
	}
	e := ss.out[t.Track.Kind().String()]
	if e == nil || !strings.EqualFold(e.mime, t.Track.Codec().MimeType) || !ss.track() {
		drainRemote(t)
		return
	}
	defer ss.wg.Done()
	e.add(t)
	defer e.remove(t)
	for {
		p, _, err := t.Track.ReadRTP()
		if err != nil {
			return
		}
		e.forward(t, p)
	}
}

func (e *egress) add(t *sdk.RemoteTrack) {
	e.mu.Lock()
	e.live = append(e.live, t)
	first := e.active == nil
	if first {
		e.active, e.rebase = t, true
	}
	e.mu.Unlock()
	if first {
		_ = t.RequestKeyframe()
	}
}

func (e *egress) remove(t *sdk.RemoteTrack) {
	e.mu.Lock()
	for i, l := range e.live {
		if l == t {
			e.live = append(e.live[:i], e.live[i+1:]...)
			break
		}
	}
	var next *sdk.RemoteTrack
	if e.active == t {
		e.active = nil
		if len(e.live) > 0 {
			next = e.live[0]
			e.active, e.rebase = next, true
		}
	}
	e.mu.Unlock()
	if next != nil {
		_ = next.RequestKeyframe()
	}
}

// forward writes one packet of t if t is active, continuing the sequence
// numbers and timestamps of the track before it.
func (e *egress) forward(t *sdk.RemoteTrack, p *rtp.Packet) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t != e.active {
		return
	}
	if e.rebase {
		e.rebase = false
		if e.started {
			e.seqOff = e.lastSeq + 1 - p.SequenceNumber
			e.tsOff = e.lastTS + 3000 - p.Timestamp
		} else {
			e.seqOff, e.tsOff = 0, 0
		}
	}
	p.SequenceNumber += e.seqOff
	p.Timestamp += e.tsOff
	if !e.started || int16(p.SequenceNumber-e.lastSeq) > 0 {
		e.lastSeq, e.lastTS = p.SequenceNumber, p.Timestamp
	}
	e.started = true
	_ = e.local.WriteRTP(p)
}

func drainRemote(t *sdk.RemoteTrack) {
	buf := make([]byte, 1600)
	for {
		if _, _, err := t.Track.Read(buf); err != nil {
			return
		}
	}
}
