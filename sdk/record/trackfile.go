package record

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264writer"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// rtpWriter is what the pion media writers have in common.
type rtpWriter interface {
	WriteRTP(*rtp.Packet) error
	io.Closer
}

// ErrUnsupportedCodec is returned for tracks no standard file holds here.
var ErrUnsupportedCodec = errors.New("no file format for this codec")

// Extension is the file extension a codec is recorded under: Opus in Ogg,
// VP8, VP9 and AV1 in IVF, H.264 as an Annex B byte stream.
func Extension(mime string) (string, error) {
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeOpus):
		return ".ogg", nil
	case strings.ToLower(webrtc.MimeTypeVP8), strings.ToLower(webrtc.MimeTypeVP9), strings.ToLower(webrtc.MimeTypeAV1):
		return ".ivf", nil
	case strings.ToLower(webrtc.MimeTypeH264):
		return ".h264", nil
	}
	return "", fmt.Errorf("%w: %s", ErrUnsupportedCodec, mime)
}

func openWriter(path, mime string, channels uint16) (rtpWriter, error) {
	switch ext, err := Extension(mime); {
	case err != nil:
		return nil, err
	case ext == ".ogg":
		if channels == 0 {
			channels = 2
		}
		return oggwriter.New(path, 48000, channels)
	case ext == ".ivf":
		// RTP timestamps as they are, in a 1/90000 time base: the writer's
		// default header (1/30) does not match its millisecond timestamps.
		return ivfwriter.New(path, ivfwriter.WithCodec(mime), ivfwriter.WithFrameRate(1, 90000), ivfwriter.WithDirectPTS())
	default:
		return h264writer.New(path)
	}
}

// trackFile is one track's file: packets in order, video from its first
// keyframe on, with the counts the manifest reports.
type trackFile struct {
	w       rtpWriter
	mime    string
	audio   bool
	clock   uint32
	started bool // a keyframe (or, for audio, any packet) has been written
	frames  int
	firstTS uint32
	elapsed int64 // RTP ticks from the first written packet to the last
	lastTS  uint32
}

// write passes one in-order packet to the file.
func (f *trackFile) write(p *rtp.Packet) error {
	if len(p.Payload) == 0 {
		return nil
	}
	if !f.started {
		if !f.audio && !isKeyframe(f.mime, p.Payload) {
			return nil // the writers skip these too: nothing decodes before a keyframe
		}
		f.started, f.firstTS, f.lastTS = true, p.Timestamp, p.Timestamp
	}
	if err := f.w.WriteRTP(p); err != nil {
		return fmt.Errorf("write %s packet: %w", f.mime, err)
	}
	f.elapsed += int64(int32(p.Timestamp - f.lastTS))
	f.lastTS = p.Timestamp
	if f.audio || p.Marker {
		f.frames++
	}
	return nil
}

// isKeyframe reports whether a packet starts a frame decodable on its own.
// For H.264 it asks for an SPS, as the pion H.264 writer does.
func isKeyframe(mime string, payload []byte) bool {
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		var vp8 codecs.VP8Packet
		if _, err := vp8.Unmarshal(payload); err != nil || len(vp8.Payload) == 0 {
			return false
		}
		return vp8.S == 1 && vp8.PID == 0 && vp8.Payload[0]&0x01 == 0
	case strings.ToLower(webrtc.MimeTypeH264):
		return h264HasSPS(payload)
	case strings.ToLower(webrtc.MimeTypeVP9):
		var vp9 codecs.VP9Packet
		if _, err := vp9.Unmarshal(payload); err != nil {
			return false
		}
		return vp9.B && !vp9.P
	}
	return true // AV1: let the writer find its own start
}

func h264HasSPS(payload []byte) bool {
	const stapA, sps = 24, 7
	switch payload[0] & 0x1f {
	case sps:
		return true
	case stapA:
		for i := 1; i+2 < len(payload); {
			size := int(payload[i])<<8 | int(payload[i+1])
			if i+2 < len(payload) && payload[i+2]&0x1f == sps {
				return true
			}
			i += 2 + size
		}
	}
	return false
}
