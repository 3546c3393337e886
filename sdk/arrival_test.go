package sdk

import (
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// fakeStream is SRTP's side of a remote stream: it hands out the packets
// it is given, and sets the clock to each one's arrival as it does.
type fakeStream struct {
	clock *atomic.Int64
	in    chan fakePacket
}

type fakePacket struct {
	raw []byte
	at  int64
}

func (f *fakeStream) Read(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
	p, ok := <-f.in
	if !ok {
		return 0, nil, io.EOF
	}
	f.clock.Store(p.at)
	return copy(b, p.raw), a, nil
}

func twccPacket(t *testing.T, seq uint16) []byte {
	t.Helper()
	h := rtp.Header{Version: 2, SSRC: 5, SequenceNumber: seq}
	if err := h.SetExtension(3, []byte{byte(seq >> 8), byte(seq)}); err != nil {
		t.Fatal(err)
	}
	raw, err := (&rtp.Packet{Header: h, Payload: make([]byte, 100)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func newTestArrival(t *testing.T) (*arrivalFeedback, *fakeStream, interceptor.RTPReader) {
	t.Helper()
	clock := &atomic.Int64{}
	clock.Store(time.Second.Nanoseconds())
	i, err := arrivalFactory{now: func() time.Time { return time.Unix(0, clock.Load()) }}.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	a := i.(*arrivalFeedback)
	a.interval = time.Hour // the test builds the feedback itself
	a.BindRTCPWriter(interceptor.RTCPWriterFunc(func(p []rtcp.Packet, _ interceptor.Attributes) (int, error) { return 0, nil }))
	fake := &fakeStream{clock: clock, in: make(chan fakePacket)}
	info := &interceptor.StreamInfo{SSRC: 5, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: 3}}}
	r := a.BindRemoteStream(info, fake)
	t.Cleanup(func() { _ = a.Close() })
	return a, fake, r
}

// The arrival time fed back is when SRTP gave the packet, not when the
// application got round to reading it: a bot that reads in bursts does
// not look like a congested link.
func TestArrivalStampedBeforeTheApplicationReads(t *testing.T) {
	a, fake, r := newTestArrival(t)
	base := 2 * time.Second.Nanoseconds()
	for i := range 10 { // 10 packets, 20 ms apart, while the application reads nothing
		fake.in <- fakePacket{raw: twccPacket(t, uint16(100+i)), at: base + int64(i)*(20*time.Millisecond).Nanoseconds()}
	}
	close(fake.in)
	buf := make([]byte, 1500)
	for i := range 10 { // then it reads them all at once
		n, _, err := r.Read(buf, nil)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		var h rtp.Header
		if _, err := h.Unmarshal(buf[:n]); err != nil || h.SequenceNumber != uint16(100+i) {
			t.Fatalf("packet %d: sequence number %d (%v), want %d", i, h.SequenceNumber, err, 100+i)
		}
	}
	if _, _, err := r.Read(buf, nil); err != io.EOF {
		t.Fatalf("after the stream ended: %v, want EOF", err)
	}
	a.mu.Lock()
	pkts := a.recorder.BuildFeedbackPacket()
	a.mu.Unlock()
	if len(pkts) != 1 {
		t.Fatalf("%d feedback packets, want 1", len(pkts))
	}
	fb := pkts[0].(*rtcp.TransportLayerCC)
	if fb.BaseSequenceNumber != 100 || fb.PacketStatusCount != 10 || len(fb.RecvDeltas) != 10 {
		t.Fatalf("feedback for %d packets from %d with %d deltas, want 10 from 100", fb.PacketStatusCount, fb.BaseSequenceNumber, len(fb.RecvDeltas))
	}
	for i, d := range fb.RecvDeltas[1:] {
		if d.Delta != 20_000 {
			t.Errorf("packet %d arrived %d us after the one before, want 20000 (when SRTP gave it)", i+1, d.Delta)
		}
	}
}

// What the application does not read is bounded: past eagerQueue packets
// the newest are dropped (and counted), and the stream goes on.
func TestArrivalQueueIsBounded(t *testing.T) {
	a, fake, r := newTestArrival(t)
	for i := range eagerQueue + 10 {
		fake.in <- fakePacket{raw: twccPacket(t, uint16(i)), at: 2e9 + int64(i)*1e6}
	}
	close(fake.in)
	<-r.(*eagerStream).done // the last packet handled before the application reads
	buf := make([]byte, 1500)
	got := 0
	for {
		if _, _, err := r.Read(buf, nil); err != nil {
			break
		}
		got++
	}
	if got != eagerQueue || a.overflow.Load() != 10 {
		t.Errorf("read %d packets, %d dropped; want %d and 10", got, a.overflow.Load(), eagerQueue)
	}
}
