package record_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/record"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
)

func joinBot(t *testing.T, ctx context.Context, srv *node.Node, identity, room string, opts sdk.Options) *sdk.Room {
	t.Helper()
	return sdktest.Join(t, ctx, srv, identity, room, opts)
}

// framesOf is how many frames the manifest says the files of one
// identity and codec hold, per file.
func framesOf(rec *record.Recorder, identity, codec string) []int {
	var out []int
	for _, tr := range rec.Manifest().Tracks {
		if tr.Identity == identity && strings.EqualFold(tr.Codec, codec) {
			out = append(out, tr.Frames)
		}
	}
	return out
}

func atLeast(frames []int, files, n int) bool {
	if len(frames) < files {
		return false
	}
	for _, f := range frames[:files] {
		if f < n {
			return false
		}
	}
	return true
}

// A recorder in a call with a VP8+Opus publisher and an H.264 publisher
// writes a file per track; the VP8+Opus publisher leaves and rejoins and
// gets new files. Every file parses with pion's readers, starts with a
// keyframe, holds consecutive counters, and lasts as long as the media the
// publisher sent while recorded (within a second).
func TestRecorderWritesEveryTrack(t *testing.T) {
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	rec, err := record.New(dir, record.Options{Room: "call"})
	if err != nil {
		t.Fatal(err)
	}
	recRoom := joinBot(t, ctx, srv, "recorder", "call", sdk.Options{OnTrack: rec.OnTrack})

	alice := joinBot(t, ctx, srv, "alice", "call", sdk.Options{})
	aPub, err := sdktest.Publish(alice, sdk.VP8, sdk.Opus)
	if err != nil {
		t.Fatal(err)
	}
	bob := joinBot(t, ctx, srv, "bob", "call", sdk.Options{})
	bPub, err := sdktest.Publish(bob, sdk.H264)
	if err != nil {
		t.Fatal(err)
	}
	defer bPub.Stop()
	show := func() string { return fmt.Sprintf("manifest %+v", rec.Manifest().Tracks) }
	sdktest.WaitFor(t, 30*time.Second, show, func() bool {
		return atLeast(framesOf(rec, "alice", webrtc.MimeTypeVP8), 1, 100) &&
			atLeast(framesOf(rec, "alice", webrtc.MimeTypeOpus), 1, 100) &&
			atLeast(framesOf(rec, "bob", webrtc.MimeTypeH264), 1, 100)
	})

	// Alice leaves and comes back as a new participant.
	aPub.Stop()
	alice.Leave()
	sdktest.WaitFor(t, 20*time.Second, show, func() bool {
		for _, tr := range rec.Manifest().Tracks {
			if tr.Identity == "alice" && tr.Ended.IsZero() {
				return false
			}
		}
		return true
	})
	alice2 := joinBot(t, ctx, srv, "alice", "call", sdk.Options{})
	aPub2, err := sdktest.Publish(alice2, sdk.VP8, sdk.Opus)
	if err != nil {
		t.Fatal(err)
	}
	defer aPub2.Stop()
	sdktest.WaitFor(t, 30*time.Second, show, func() bool {
		return atLeast(framesOf(rec, "alice", webrtc.MimeTypeVP8), 2, 50) &&
			atLeast(framesOf(rec, "alice", webrtc.MimeTypeOpus), 2, 50)
	})

	if err := recRoom.Leave(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := record.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Ended.IsZero() || m.Room != "call" {
		t.Errorf("manifest not finished: %+v", m)
	}
	want := map[string]int{"alice/video/VP8": 2, "alice/audio/opus": 2, "bob/video/H264": 1}
	got := map[string]int{}
	for _, tr := range m.Tracks {
		got[tr.Identity+"/"+tr.Codec]++
		checkFile(t, dir, tr)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("manifest has %d files for %s, want %d (all: %v)", got[k], k, n, got)
		}
	}
}

func checkFile(t *testing.T, dir string, tr record.Track) {
	t.Helper()
	path := filepath.Join(dir, tr.File)
	var p parsed
	switch strings.ToLower(tr.Codec) {
	case "video/vp8":
		p = parseIVF(t, path)
	case "audio/opus":
		p = parseOgg(t, path)
	case "video/h264":
		p = parseH264(t, path)
	default:
		t.Fatalf("unexpected codec %s in manifest", tr.Codec)
	}
	if len(p.counters) < 50 {
		t.Errorf("%s holds %d frames, want at least 50", tr.File, len(p.counters))
		return
	}
	if len(p.counters) != tr.Frames {
		t.Errorf("%s holds %d frames, manifest says %d", tr.File, len(p.counters), tr.Frames)
	}
	if !p.firstKey {
		t.Errorf("%s does not start with a keyframe", tr.File)
	}
	if err := sdktest.InOrder(p.counters); err != nil {
		t.Errorf("%s: %v", tr.File, err)
	}
	// The call's media time while recorded: the publisher stamps frames
	// FrameInterval apart, so the counters measure it.
	sent := int64(p.counters[len(p.counters)-1]-p.counters[0]) * sdktest.FrameInterval.Milliseconds()
	if d := p.durationMS - sent; d < -1000 || d > 1000 {
		t.Errorf("%s lasts %d ms, the publisher sent %d ms of it", tr.File, p.durationMS, sent)
	}
	if d := tr.DurationMS - sent; d < -1000 || d > 1000 {
		t.Errorf("%s: manifest says %d ms, the publisher sent %d ms", tr.File, tr.DurationMS, sent)
	}
	if tr.Started.IsZero() || tr.Ended.Before(tr.Started) || tr.ParticipantID == "" || tr.Source == "" {
		t.Errorf("%s: manifest entry incomplete: %+v", tr.File, tr)
	}
}
