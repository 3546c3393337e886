package sdk

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// pcPair connects two Pion PeerConnections on loopback.
func pcPair(t *testing.T) (*webrtc.PeerConnection, *webrtc.PeerConnection) {
	t.Helper()
	api, err := newAPI(true, nil, newAudioLevels(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func connectPair(t *testing.T, a, b *webrtc.PeerConnection) {
	t.Helper()
	offer, err := a.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ga := webrtc.GatheringCompletePromise(a)
	if err := a.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-ga
	if err := b.SetRemoteDescription(*a.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := b.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gb := webrtc.GatheringCompletePromise(b)
	if err := b.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	<-gb
	if err := a.SetRemoteDescription(*b.LocalDescription()); err != nil {
		t.Fatal(err)
	}
}

// TestDCLinkBackpressure: while the receiver does not read, the sender's
// buffered amount stays bounded (send waits instead of queueing); once it
// reads again, every message arrives whole, chunked ones reassembled.
func TestDCLinkBackpressure(t *testing.T) {
	a, b := pcPair(t)
	ordered := true
	dc, err := a.CreateDataChannel(protocol.ChannelCollab, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		t.Fatal(err)
	}
	stall := make(chan struct{})
	var mu sync.Mutex
	var got [][]byte
	var reasm protocol.Reassembler
	b.OnDataChannel(func(rd *webrtc.DataChannel) {
		rd.OnMessage(func(m webrtc.DataChannelMessage) {
			<-stall // a receiver that stopped reading
			msg, err := reasm.Add(m.Data)
			if err != nil {
				t.Errorf("reassembly: %v", err)
				return
			}
			if msg != nil {
				mu.Lock()
				got = append(got, msg)
				mu.Unlock()
			}
		})
	})
	opened := make(chan struct{})
	link := newDCLink(dc, func() { close(opened) }, func([]byte) {}, func(error) {}, func() {})
	connectPair(t, a, b)
	select {
	case <-opened:
	case <-time.After(20 * time.Second):
		t.Fatal("data channel did not open")
	}

	// 40 messages of 100 KB (7 chunks each): 4 MB, far past the high-water mark.
	const n = 40
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = []byte(fmt.Sprintf(`{"type":"x","i":%d,"pad":"%s"}`, i, bytes.Repeat([]byte("é"), 50<<10)))
	}
	var sent atomic.Int32
	done := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := link.send(context.Background(), m); err != nil {
				done <- err
				return
			}
			sent.Add(1)
		}
		done <- nil
	}()
	// The sender fills the buffer up to the mark and then waits.
	var peak uint64
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		peak = max(peak, dc.BufferedAmount())
		time.Sleep(5 * time.Millisecond)
	}
	if s := sent.Load(); s == n {
		t.Fatalf("all %d messages were handed to a channel nobody reads", n)
	}
	if limit := uint64(sendHighWater + protocol.MaxFrame); peak > limit {
		t.Fatalf("buffered %d bytes, limit %d", peak, limit)
	}
	t.Logf("stalled receiver: %d of %d messages sent, peak buffered %d bytes", sent.Load(), n, peak)
	close(stall)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sender did not finish after the receiver resumed")
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d messages", k, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range msgs {
		if !bytes.Equal(got[i], msgs[i]) {
			t.Fatalf("message %d differs", i)
		}
	}
}
