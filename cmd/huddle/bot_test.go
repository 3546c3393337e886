package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/record"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// startBot runs `huddle bot ...` and returns a function that interrupts it
// with SIGINT and returns its error and output.
func startBot(t *testing.T, bin string, args ...string) func() (error, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"bot"}, args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return func() (error, string) {
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			return err, out.String()
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err, out.String()
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			return errors.New("did not exit within 30s of SIGINT"), out.String()
		}
	}
}

// `huddle bot record` records a room until SIGINT and finishes its files
// (the IVF header counts every frame); `huddle bot play --recording --loop`
// plays them into another room, where a bot gets the frames in order.
func TestBotRecordAndPlayCommands(t *testing.T) {
	bin := buildHuddle(t)
	srv := sdktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	alice, err := sdk.Join(ctx, srv.URL(), sdktest.Token(t, srv, "alice", "live", protocol.AllGrants()), sdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Leave()
	pub, err := sdktest.Publish(alice, sdk.VP8, sdk.Opus)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()

	dir := filepath.Join(t.TempDir(), "rec")
	stopRec := startBot(t, bin, "record", "--url", srv.URL(), "--room", "live", "--out", dir)
	sdktest.WaitFor(t, 40*time.Second, func() string { return "2 recorded tracks of 60 frames" }, func() bool {
		m, err := record.ReadManifest(dir)
		if err != nil || len(m.Tracks) < 2 {
			return false
		}
		for _, tr := range m.Tracks {
			if tr.Frames < 60 {
				return false
			}
		}
		return true
	})
	if err, out := stopRec(); err != nil {
		t.Fatalf("bot record after SIGINT: %v\n%s", err, out)
	}
	m, err := record.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Ended.IsZero() {
		t.Error("manifest has no end time after SIGINT")
	}
	for _, tr := range m.Tracks {
		if tr.Ended.IsZero() {
			t.Errorf("%s has no end time", tr.File)
		}
		if strings.HasSuffix(tr.File, ".ivf") {
			checkIVFFinished(t, filepath.Join(dir, tr.File), tr.Frames)
		}
	}

	viewer := sdktest.NewFrameLog()
	v, err := sdk.Join(ctx, srv.URL(), sdktest.Token(t, srv, "viewer", "replay", protocol.AllGrants()), sdk.Options{OnTrack: viewer.OnTrack})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Leave()
	stopPlay := startBot(t, bin, "play", "--url", srv.URL(), "--room", "replay", "--recording", dir, "--loop")
	sdktest.WaitFor(t, 40*time.Second, func() string { return "60 played frames each (" + viewer.String() + ")" }, func() bool {
		return viewer.Count("video/vp8") >= 60 && viewer.Count("audio/opus") >= 60
	})
	if err, out := stopPlay(); err != nil {
		t.Fatalf("bot play after SIGINT: %v\n%s", err, out)
	}
	for _, codec := range []string{"video/vp8", "audio/opus"} {
		c := viewer.Counters(codec)
		for i := 1; i < len(c); i++ {
			if c[i] != c[i-1]+1 && c[i] > c[i-1] {
				t.Fatalf("%s: played counters skip from %d to %d", codec, c[i-1], c[i])
			}
		}
	}
}

func checkIVFFinished(t *testing.T, path string, frames int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, hdr, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, _, err := r.ParseNextFrame(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		n++
	}
	if n != frames || int(hdr.NumFrames) != n {
		t.Errorf("%s: %d frames, header says %d, manifest %d", path, n, hdr.NumFrames, frames)
	}
}
