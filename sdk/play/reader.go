package play

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// frame is one encoded frame and the time it is due, from the file's
// start.
type frame struct {
	data []byte
	at   time.Duration
}

// frameReader reads a file's frames in order; it returns io.EOF at the end.
type frameReader interface {
	next() (frame, error)
	io.Closer
}

// codecOf is the codec a file holds, by its extension (and, for IVF, its
// header).
func codecOf(path string) (webrtc.RTPCodecCapability, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".ogg", ".opus":
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, nil
	case ".h264", ".264":
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, nil
	case ".ivf":
		f, err := os.Open(path)
		if err != nil {
			return webrtc.RTPCodecCapability{}, err
		}
		defer f.Close()
		_, hdr, err := ivfreader.NewWith(f)
		if err != nil {
			return webrtc.RTPCodecCapability{}, fmt.Errorf("%s: %w", path, err)
		}
		mime, ok := map[string]string{"VP80": webrtc.MimeTypeVP8, "VP90": webrtc.MimeTypeVP9, "AV01": webrtc.MimeTypeAV1}[hdr.FourCC]
		if !ok {
			return webrtc.RTPCodecCapability{}, fmt.Errorf("%s: IVF with fourcc %q: want VP80, VP90 or AV01", path, hdr.FourCC)
		}
		return webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000}, nil
	}
	return webrtc.RTPCodecCapability{}, fmt.Errorf("%s: unknown file type: want .ogg (Opus), .ivf (VP8, VP9, AV1) or .h264 (Annex B)", path)
}

// openReader opens a file for its frames. H.264 Annex B has no timing, so
// its frames are frameInterval apart.
func openReader(path string, frameInterval time.Duration) (frameReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var r frameReader
	switch strings.ToLower(filepath.Ext(path)) {
	case ".ogg", ".opus":
		r, err = newOggFrames(f)
	case ".ivf":
		r, err = newIVFFrames(f)
	default:
		r, err = newH264Frames(f, frameInterval)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// oggFrames reads Ogg Opus with one packet per page, as pion's writer (and
// so the recorder) writes it; the granule positions time it.
type oggFrames struct {
	f       *os.File
	r       *oggreader.OggReader
	granule uint64
	started bool
}

func newOggFrames(f *os.File) (*oggFrames, error) {
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		return nil, err
	}
	return &oggFrames{f: f, r: r}, nil
}

func (o *oggFrames) next() (frame, error) {
	for {
		payload, ph, err := o.r.ParseNextPage()
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF // a file cut short plays up to the cut
			}
			return frame{}, err
		}
		if _, isHeader := ph.HeaderType(payload); isHeader || len(payload) == 0 {
			continue
		}
		// A page's granule is the sample count at its end: the packet is
		// due at the previous page's.
		at := o.granule
		if !o.started {
			at, o.started = 0, true
		}
		o.granule = ph.GranulePosition
		return frame{data: payload, at: time.Duration(at) * time.Second / 48000}, nil
	}
}

func (o *oggFrames) Close() error { return o.f.Close() }

// ivfFrames reads IVF; frame times come from its timestamps and time base.
type ivfFrames struct {
	f     *os.File
	r     *ivfreader.IVFReader
	ratio float64 // reader timestamp to seconds
	first uint64
	seen  bool
}

func newIVFFrames(f *os.File) (*ivfFrames, error) {
	r, hdr, err := ivfreader.NewWith(f)
	if err != nil {
		return nil, err
	}
	if hdr.TimebaseNumerator == 0 || hdr.TimebaseDenominator == 0 {
		return nil, errors.New("IVF header has a zero time base")
	}
	// The reader hands out pts × rate / scale; pts × scale / rate are seconds.
	q := float64(hdr.TimebaseNumerator) / float64(hdr.TimebaseDenominator)
	return &ivfFrames{f: f, r: r, ratio: q * q}, nil
}

func (v *ivfFrames) next() (frame, error) {
	data, fh, err := v.r.ParseNextFrame()
	if err != nil {
		return frame{}, err
	}
	if !v.seen {
		v.first, v.seen = fh.Timestamp, true
	}
	at := time.Duration(float64(fh.Timestamp-v.first) * v.ratio * float64(time.Second))
	return frame{data: data, at: at}, nil
}

func (v *ivfFrames) Close() error { return v.f.Close() }

// h264Frames groups an Annex B stream's NAL units into access units: a
// new one starts at a parameter set, SEI or delimiter after a slice, or at
// a slice whose first_mb_in_slice is 0 after a slice.
type h264Frames struct {
	f        *os.File
	r        *h264reader.H264Reader
	interval time.Duration
	n        int
	pending  *h264reader.NAL
	done     bool
}

func newH264Frames(f *os.File, interval time.Duration) (*h264Frames, error) {
	// SEI (captions, timing) goes along with its picture.
	r, err := h264reader.NewReaderWithOptions(f, h264reader.WithIncludeSEI(true))
	if err != nil {
		return nil, err
	}
	if interval <= 0 {
		interval = time.Second / 30
	}
	return &h264Frames{f: f, r: r, interval: interval}, nil
}

func (h *h264Frames) next() (frame, error) {
	var au []byte
	sawSlice := false
	for !h.done {
		nal := h.pending
		h.pending = nil
		if nal == nil {
			var err error
			if nal, err = h.r.NextNAL(); err != nil {
				if !errors.Is(err, io.EOF) {
					return frame{}, err
				}
				h.done = true
				break
			}
		}
		slice := nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr
		startsPicture := !slice || (len(nal.Data) > 1 && nal.Data[1]&0x80 != 0)
		if sawSlice && startsPicture {
			h.pending = nal
			break
		}
		au = append(au, 0, 0, 0, 1)
		au = append(au, nal.Data...)
		sawSlice = sawSlice || slice
	}
	if len(au) == 0 {
		return frame{}, io.EOF
	}
	fr := frame{data: au, at: time.Duration(h.n) * h.interval}
	h.n++
	return fr, nil
}

func (h *h264Frames) Close() error { return h.f.Close() }
