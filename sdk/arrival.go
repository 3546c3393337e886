package sdk

import (
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// arrivalFeedback is the bot's transport-wide congestion control feedback
// (TWCC): the arrival time of every packet, sent back to the server, whose
// downlink estimate and probes judge the bot's link by it.
//
// Why not Pion's own generator: it stamps a packet's arrival when the
// application reads it (its reader runs inside the application's
// Track.Read). A bot that is busy, or starved of CPU on a loaded machine,
// reads in bursts: its packets wait in the SRTP buffer, are stamped late
// and together, and the server sees a queue growing (and, once the bot
// catches up, a link faster than it is). It then takes video away from a
// bot whose network is fine. Here each remote stream is read eagerly by
// its own goroutine as soon as SRTP has decrypted a packet: the packet is
// stamped then, and handed to the application through a bounded queue.
// The feedback is built by pion/interceptor's twcc.Recorder, as Pion's
// generator does.
type arrivalFeedback struct {
	interceptor.NoOp
	now      func() time.Time
	start    time.Time
	interval time.Duration

	mu       sync.Mutex
	recorder *twcc.Recorder
	streams  map[uint32]*eagerStream
	closed   bool
	quit     chan struct{}
	wg       sync.WaitGroup // the feedback loop and the streams' readers

	overflow atomic.Uint64 // packets dropped because the application did not read
}

const (
	// feedbackInterval is how often feedback is sent (Pion's default).
	feedbackInterval = 100 * time.Millisecond
	// eagerQueue bounds the packets read ahead of the application per
	// stream: about a second of a 1.5 Mbit/s video. A packet that does not
	// fit is dropped (the NACK generator asks for it again).
	eagerQueue = 256
	// eagerBuf is the largest packet read: Pion's receive MTU is 1460.
	eagerBuf = 1500
	// maxNacks is how many times a lost packet is asked for.
	maxNacks = 10
)

// arrivalFactory makes one arrivalFeedback per PeerConnection.
type arrivalFactory struct{ now func() time.Time }

func (f arrivalFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	now := f.now
	if now == nil {
		now = time.Now
	}
	return &arrivalFeedback{now: now, start: now(), interval: feedbackInterval,
		streams: map[uint32]*eagerStream{}, quit: make(chan struct{})}, nil
}

// registerArrivalFeedback negotiates transport-wide feedback for audio and
// video (as webrtc.ConfigureTWCCSender does) with arrivalFeedback as its
// generator. Register it before the NACK generator and the reports, so
// that it reads straight from SRTP.
func registerArrivalFeedback(me *webrtc.MediaEngine, ir *interceptor.Registry) error {
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		me.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, kind)
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, kind); err != nil {
			return err
		}
	}
	ir.Add(arrivalFactory{})
	return nil
}

// BindRTCPWriter starts the loop that sends feedback every interval.
func (a *arrivalFeedback) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.recorder != nil {
		return w
	}
	a.recorder = twcc.NewRecorder(rand.Uint32())
	a.wg.Add(1)
	go a.loop(w)
	return w
}

func (a *arrivalFeedback) loop(w interceptor.RTCPWriter) {
	defer a.wg.Done()
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		select {
		case <-a.quit:
			return
		case <-t.C:
		}
		a.mu.Lock()
		pkts := a.recorder.BuildFeedbackPacket()
		a.mu.Unlock()
		if len(pkts) > 0 {
			_, _ = w.Write(pkts, nil) // fails only once the connection is closed
		}
	}
}

// record notes a packet's arrival, in microseconds since the start.
func (a *arrivalFeedback) record(ssrc uint32, seq uint16, at time.Time) {
	a.mu.Lock()
	if a.recorder != nil {
		a.recorder.Record(ssrc, seq, at.Sub(a.start).Microseconds())
	}
	a.mu.Unlock()
}

// BindRemoteStream starts reading a stream that carries transport-wide
// sequence numbers eagerly; other streams are left as they are.
func (a *arrivalFeedback) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	var ext uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI {
			ext = uint8(e.ID) //nolint:gosec // extension ids are 1 to 14
		}
	}
	if ext == 0 {
		return r
	}
	s := &eagerStream{a: a, ssrc: info.SSRC, ext: ext, in: r, out: make(chan eagerPacket, eagerQueue), done: make(chan struct{})}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return r
	}
	a.streams[info.SSRC] = s
	a.wg.Add(1)
	a.mu.Unlock()
	go s.run()
	return s
}

// UnbindRemoteStream stops handing out a stream's packets; its reader ends
// with the stream's next read (the stream is being closed).
func (a *arrivalFeedback) UnbindRemoteStream(info *interceptor.StreamInfo) {
	a.mu.Lock()
	s := a.streams[info.SSRC]
	delete(a.streams, info.SSRC)
	a.mu.Unlock()
	if s != nil {
		s.unbound.Store(true)
	}
}

// Close stops the feedback and waits for the readers, which end as their
// streams close (Pion closes the interceptors after the SRTP sessions).
func (a *arrivalFeedback) Close() error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.quit)
	}
	a.mu.Unlock()
	a.wg.Wait()
	return nil
}

// eagerStream reads one remote stream ahead of the application.
type eagerStream struct {
	a       *arrivalFeedback
	ssrc    uint32
	ext     uint8
	in      interceptor.RTPReader
	out     chan eagerPacket
	done    chan struct{} // closed when the reader ended; err says why
	err     error
	unbound atomic.Bool
	hdr     rtp.Header // the reader's only
}

type eagerPacket struct {
	buf   *[eagerBuf]byte
	n     int
	attrs interceptor.Attributes
}

var eagerBufs = sync.Pool{New: func() any { return new([eagerBuf]byte) }}

// run is the stream's reader, owned by the interceptor (Close waits for it).
func (s *eagerStream) run() {
	defer s.a.wg.Done()
	defer close(s.done)
	for {
		buf := eagerBufs.Get().(*[eagerBuf]byte)
		n, attrs, err := s.in.Read(buf[:], nil)
		at := s.a.now()
		if err != nil {
			eagerBufs.Put(buf)
			if errors.Is(err, io.ErrShortBuffer) {
				continue // one oversized packet is lost, not the stream
			}
			s.err = err
			return
		}
		if s.unbound.Load() {
			eagerBufs.Put(buf)
			s.err = io.EOF
			return
		}
		if _, err := s.hdr.Unmarshal(buf[:n]); err == nil {
			if e := s.hdr.GetExtension(s.ext); len(e) >= 2 {
				s.a.record(s.ssrc, uint16(e[0])<<8|uint16(e[1]), at)
			}
		}
		select {
		case s.out <- eagerPacket{buf: buf, n: n, attrs: attrs}:
		default:
			eagerBufs.Put(buf)
			s.a.overflow.Add(1)
		}
	}
}

// Read hands the application the next packet read ahead; once the stream
// ended and its packets are read, the error that ended it.
func (s *eagerStream) Read(b []byte, attrs interceptor.Attributes) (int, interceptor.Attributes, error) {
	var p eagerPacket
	select {
	case p = <-s.out:
	case <-s.done:
		select {
		case p = <-s.out:
		default:
			return 0, nil, s.err
		}
	}
	defer eagerBufs.Put(p.buf)
	if len(b) < p.n {
		return 0, nil, io.ErrShortBuffer
	}
	n := copy(b, p.buf[:p.n])
	if p.attrs != nil {
		attrs = p.attrs
	}
	return n, attrs, nil
}

// registerInterceptors is webrtc.RegisterDefaultInterceptors with
// arrivalFeedback in place of Pion's feedback generator, beneath the rest.
func registerInterceptors(me *webrtc.MediaEngine, ir *interceptor.Registry) error {
	if err := registerArrivalFeedback(me, ir); err != nil {
		return err
	}
	// A packet is asked for at most maxNacks times (a second, at the
	// generator's 100 ms), as libwebrtc does; Pion's default asks until
	// the packet leaves its log, so a video the server paused was still
	// being asked for when it resumed, and the resends of its stale
	// packets burst into the link just as it had room again.
	gen := []nack.GeneratorOption{nack.GeneratorMaxNacksPerPacket(maxNacks)}
	if err := webrtc.ConfigureNackWithOptions(me, ir, gen); err != nil {
		return err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		return err
	}
	return webrtc.ConfigureStatsInterceptor(ir)
}
