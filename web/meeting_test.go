package web_test

// Browser tests of the meeting controls: mute and camera off as the other
// side sees them and as the server counts packets, push-to-talk, switching
// cameras mid-call.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/huddle-rtc/huddle/node"
)

type callState struct {
	MicOn          bool     `json:"micOn"`
	CamOn          bool     `json:"camOn"`
	Sharing        bool     `json:"sharing"`
	Hand           bool     `json:"hand"`
	Featured       *string  `json:"featured"`
	Speakers       []string `json:"speakers"`
	ServerTrackIDs struct {
		Audio *string `json:"audio"`
		Video *string `json:"video"`
	} `json:"serverTrackIds"`
	People []struct {
		ID      string  `json:"id"`
		Name    string  `json:"name"`
		Hand    bool    `json:"hand"`
		MicOff  bool    `json:"micOff"`
		CamOff  bool    `json:"camOff"`
		Quality *string `json:"quality"`
	} `json:"people"`
}

func callOf(t *testing.T, b *browser) callState {
	t.Helper()
	s, err := eval[callState](b, `window.huddle.call()`)
	if err != nil {
		t.Fatalf("%s: call state: %v", b.name, err)
	}
	return s
}

// serverTrackIDs waits until the page knows the server's ids of its own
// microphone and camera tracks.
func serverTrackIDs(t *testing.T, b *browser) (audio, video string) {
	t.Helper()
	waitFor(t, 20*time.Second, b.name+" to learn its track ids", func() (bool, string) {
		s := callOf(t, b)
		if s.ServerTrackIDs.Audio == nil || s.ServerTrackIDs.Video == nil {
			return false, fmt.Sprintf("%+v", s.ServerTrackIDs)
		}
		audio, video = *s.ServerTrackIDs.Audio, *s.ServerTrackIDs.Video
		return true, ""
	})
	return audio, video
}

// tileFlags reads what b's tile of participant id shows.
type tileFlags struct {
	Found    bool `json:"found"`
	MicOff   bool `json:"micOff"`
	CamOff   bool `json:"camOff"`
	Hand     bool `json:"hand"`
	Speaking bool `json:"speaking"`
	Active   bool `json:"active"`
	Quality  string
	Title    string `json:"title"`
	Level    string `json:"level"`
}

func tileOf(t *testing.T, b *browser, id string) tileFlags {
	t.Helper()
	f, err := eval[tileFlags](b, fmt.Sprintf(`(() => {
		const el = document.querySelector('#grid .tile[data-participant-id=%q]');
		if (!el) return {found: false};
		const q = el.querySelector('.badge.quality');
		return {
			found: true,
			micOff: !el.querySelector('.badge.mic-off').hidden,
			camOff: el.classList.contains('cam-off'),
			hand: !el.querySelector('.badge.hand').hidden,
			speaking: el.classList.contains('speaking'),
			active: el.classList.contains('active-speaker'),
			title: q.hidden ? '' : q.title,
			level: q.hidden ? '' : q.dataset.level,
		};
	})()`, id))
	if err != nil {
		t.Fatalf("%s: tile of %s: %v", b.name, id, err)
	}
	return f
}

// packetsOf reads the server's count of a track's received packets.
func packetsOf(t *testing.T, srv *node.Node, room, track string) uint64 {
	t.Helper()
	n, ok := srv.TrackPacketsReceived(room, track)
	if !ok {
		t.Fatalf("the server has no track %s in %s", track, room)
	}
	return n
}

// waitPacketsGrow waits until the server receives more packets of a track.
func waitPacketsGrow(t *testing.T, srv *node.Node, room, track, what string) {
	t.Helper()
	n := packetsOf(t, srv, room, track)
	waitFor(t, 15*time.Second, what, func() (bool, string) {
		m := packetsOf(t, srv, room, track)
		return m > n+5, fmt.Sprintf("%d packets, was %d", m, n)
	})
}

// waitPacketsStop waits until the server's count of a track stands still
// for a second (packets in flight may land first), and checks that it
// stays still.
func waitPacketsStop(t *testing.T, srv *node.Node, room, track, what string) {
	t.Helper()
	var settled uint64
	waitFor(t, 15*time.Second, what, func() (bool, string) {
		a := packetsOf(t, srv, room, track)
		time.Sleep(time.Second)
		settled = packetsOf(t, srv, room, track)
		return a == settled, fmt.Sprintf("%d then %d packets", a, settled)
	})
	time.Sleep(time.Second)
	if n := packetsOf(t, srv, room, track); n != settled {
		t.Fatalf("%s: the server still receives packets: %d, then %d", what, settled, n)
	}
}

// TestMuteAndCameraOff: Alice mutes with the button; Bob's tile of her
// shows it and the server stops receiving her audio. Space talks while
// muted. Unmute restores both. The camera likewise: off sends nothing, on
// brings frames back on the same track.
func TestMuteAndCameraOff(t *testing.T) {
	srv := startServer(t)
	alice := newBrowser(t, "alice")
	alice.dumpLogsOnFailure()
	bob := newBrowser(t, "bob")
	bob.dumpLogsOnFailure()
	const room = "mute"
	aliceID := joinByTyping(t, alice, srv.URL()+"/", "Alice", room)
	joinByTyping(t, bob, srv.URL()+"/", "Bob", room)
	waitVideoFlowing(t, bob, aliceID, "Alice")
	audio, video := serverTrackIDs(t, alice)
	waitPacketsGrow(t, srv, room, audio, "alice's audio at the server")
	if f := tileOf(t, bob, aliceID); !f.Found || f.MicOff || f.CamOff {
		t.Fatalf("bob's tile of alice before any mute: %+v", f)
	}
	// Her connection quality shows on the tile, with the figures as tooltip.
	waitFor(t, 20*time.Second, "a quality badge on bob's tile of alice", func() (bool, string) {
		f := tileOf(t, bob, aliceID)
		return f.Level != "" && strings.Contains(f.Title, "packets lost") && strings.Contains(f.Title, "jitter"), fmt.Sprintf("%+v", f)
	})

	alice.mustDo(10*time.Second, "click mute", chromedp.Click(chromedp.ID("ctl-mic")))
	waitFor(t, 10*time.Second, "bob's tile to show alice muted", func() (bool, string) {
		f := tileOf(t, bob, aliceID)
		return f.MicOff, fmt.Sprintf("%+v", f)
	})
	waitPacketsStop(t, srv, room, audio, "alice's muted audio to stop at the server")
	if s := callOf(t, alice); s.MicOn {
		t.Errorf("alice's page says the mic is on after mute: %+v", s)
	}
	label, err := chromedp.Run(alice.ctx, chromedp.Text(chromedp.ID("ctl-mic")))
	if err != nil || label == "" {
		t.Errorf("mute button label %q (%v)", label, err)
	}

	// Push-to-talk: hold space while muted.
	if _, err := eval[bool](alice, `document.dispatchEvent(new KeyboardEvent('keydown', {code: 'Space', key: ' ', bubbles: true}))`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "bob to see alice unmuted while she holds space", func() (bool, string) {
		f := tileOf(t, bob, aliceID)
		return !f.MicOff, fmt.Sprintf("%+v", f)
	})
	waitPacketsGrow(t, srv, room, audio, "alice's audio while she holds space")
	if _, err := eval[bool](alice, `document.dispatchEvent(new KeyboardEvent('keyup', {code: 'Space', key: ' ', bubbles: true}))`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "bob to see alice muted once space is released", func() (bool, string) {
		f := tileOf(t, bob, aliceID)
		return f.MicOff, fmt.Sprintf("%+v", f)
	})
	waitPacketsStop(t, srv, room, audio, "alice's audio to stop after push-to-talk")

	alice.mustDo(10*time.Second, "click unmute", chromedp.Click(chromedp.ID("ctl-mic")))
	waitFor(t, 10*time.Second, "bob's tile to show alice unmuted", func() (bool, string) {
		f := tileOf(t, bob, aliceID)
		return !f.MicOff, fmt.Sprintf("%+v", f)
	})
	waitPacketsGrow(t, srv, room, audio, "alice's audio again after unmute")

	// Camera off: nothing is sent, bob shows her initial.
	alice.mustDo(10*time.Second, "click stop video", chromedp.Click(chromedp.ID("ctl-cam")))
	waitFor(t, 10*time.Second, "bob's tile to show alice's camera off", func() (bool, string) {
		f := tileOf(t, bob, aliceID)
		return f.CamOff, fmt.Sprintf("%+v", f)
	})
	waitPacketsStop(t, srv, room, video, "alice's video to stop at the server")
	alice.screenshot("camera-off-alice.png")
	bob.screenshot("camera-off-bob.png")

	alice.mustDo(10*time.Second, "click start video", chromedp.Click(chromedp.ID("ctl-cam")))
	waitFor(t, 10*time.Second, "bob's tile to show alice's camera on", func() (bool, string) {
		f := tileOf(t, bob, aliceID)
		return !f.CamOff, fmt.Sprintf("%+v", f)
	})
	waitPacketsGrow(t, srv, room, video, "alice's video again")
	// The same track: bob keeps decoding it, with more frames than before.
	before, _, _ := framesFrom(bob, aliceID)
	waitFor(t, 15*time.Second, "bob to decode alice's video again", func() (bool, string) {
		s, ok, seen := framesFrom(bob, aliceID)
		return ok && s.TrackID == before.TrackID && s.FramesDecoded > before.FramesDecoded+10, seen
	})
	if _, v := serverTrackIDs(t, alice); v != video {
		t.Errorf("alice's camera track is %s after camera on, was %s", v, video)
	}
	// Her own tile shows the camera again (a new local track).
	waitFor(t, 10*time.Second, "alice's own tile to show her camera again", func() (bool, string) {
		ts, err := tiles(alice)
		return err == nil && len(ts) > 0 && ts[0].Local && ts[0].VideoWidth > 0 && ts[0].Visible, fmt.Sprintf("%+v %v", ts, err)
	})
	live, err := eval[bool](alice, `document.querySelector('#grid .tile.local video').srcObject.getVideoTracks()[0].readyState === 'live'`)
	if err != nil || !live {
		t.Errorf("alice's own tile plays a stopped camera track (%v)", err)
	}
	for _, b := range []*browser{alice, bob} {
		if e, err := eval[*string](b, `window.huddle.lastError`); err != nil || e != nil {
			t.Errorf("%s: lastError %q (%v)", b.name, deref(e), err)
		}
	}
}

// TestSwitchCameraKeepsTrack: switching the camera mid-call replaces the
// track on the same sender: the server's track id stays, no new track is
// published, and the other side keeps decoding frames.
func TestSwitchCameraKeepsTrack(t *testing.T) {
	srv := startServer(t)
	// Three fake cameras, so that the switch is to another device. (The
	// second, fake_device_1, delivers Y16 depth frames that the encoder
	// does not take; the third delivers MJPEG, like a real webcam.)
	alice := newBrowser(t, "alice", chromedp.Flag("use-fake-device-for-media-stream", "device-count=3"))
	alice.dumpLogsOnFailure()
	bob := newBrowser(t, "bob")
	bob.dumpLogsOnFailure()
	const room = "switch"
	aliceID := joinByTyping(t, alice, srv.URL()+"/", "Alice", room)
	joinByTyping(t, bob, srv.URL()+"/", "Bob", room)
	first := waitVideoFlowing(t, bob, aliceID, "Alice")
	_, video := serverTrackIDs(t, alice)

	type device struct {
		ID    string `json:"id"`
		Label string `json:"label"`
	}
	devs, err := eval[map[string][]device](alice, `window.huddle.mediaDevices()`)
	if err != nil || len(devs["camera"]) == 0 {
		t.Fatalf("alice's cameras: %+v %v", devs, err)
	}
	cur, err := eval[string](alice, `document.getElementById('pick-camera').value`)
	if err != nil {
		t.Fatal(err)
	}
	var target device
	for _, d := range devs["camera"] {
		if d.Label == "fake_device_2" {
			target = d
		}
	}
	if target.ID == "" || target.ID == cur {
		t.Fatalf("alice has cameras %+v (using %s), want fake_device_2 besides", devs["camera"], cur)
	}
	t.Logf("cameras %+v; switching from %s to %s", devs["camera"], cur, target.ID)
	oldTrack, err := eval[string](alice, `window.huddle.call() && document.querySelector('#grid .tile.local video').srcObject.getVideoTracks()[0].id`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eval[any](alice, fmt.Sprintf(`window.huddle.switchCamera(%q).then(() => null)`, target.ID)); err != nil {
		t.Fatalf("switch camera: %v", err)
	}
	newTrack, err := eval[string](alice, `document.querySelector('#grid .tile.local video').srcObject.getVideoTracks()[0].id`)
	if err != nil || newTrack == oldTrack {
		t.Fatalf("local preview track %q after the switch (%v), was %q: no new camera track", newTrack, err, oldTrack)
	}
	if now, err := eval[string](alice, `document.querySelector('#grid .tile.local video').srcObject.getVideoTracks()[0].getSettings().deviceId`); err != nil || now != target.ID {
		t.Errorf("camera after the switch is %q (%v), want %q", now, err, target.ID)
	}
	waitFor(t, 15*time.Second, "bob to keep decoding alice's video after the switch", func() (bool, string) {
		s, ok, seen := framesFrom(bob, aliceID)
		return ok && s.TrackID == first.TrackID && s.FramesDecoded > first.FramesDecoded+30, seen
	})
	if _, v := serverTrackIDs(t, alice); v != video {
		t.Errorf("server track id %s after the switch, was %s", v, video)
	}
	stats, err := eval[[]videoStat](bob, `window.huddle.remoteVideoStats()`)
	if err != nil || len(stats) != 1 {
		t.Errorf("bob receives %+v (%v), want alice's one video track", stats, err)
	}
	waitPacketsGrow(t, srv, room, video, "alice's video on the same server track")

	// The microphone likewise: a new track on the same sender.
	audio, _ := serverTrackIDs(t, alice)
	if len(devs["mic"]) == 0 {
		t.Fatalf("alice has no microphone: %+v", devs)
	}
	if _, err := eval[any](alice, fmt.Sprintf(`window.huddle.switchMic(%q).then(() => null)`, devs["mic"][len(devs["mic"])-1].ID)); err != nil {
		t.Fatalf("switch microphone: %v", err)
	}
	waitPacketsGrow(t, srv, room, audio, "alice's audio on the same server track after the microphone switch")

	// The speaker: every audio element plays through the chosen output,
	// also those of tracks that start later.
	bobDevs, err := eval[map[string][]device](bob, `window.huddle.mediaDevices()`) // ids differ per profile
	if err != nil || len(bobDevs["speaker"]) == 0 {
		t.Fatalf("bob has no audio outputs listed: %+v %v", bobDevs, err)
	}
	out := bobDevs["speaker"][len(bobDevs["speaker"])-1].ID
	if _, err := eval[any](bob, fmt.Sprintf(`window.huddle.switchSpeaker(%q).then(() => null)`, out)); err != nil {
		t.Fatalf("switch speaker: %v", err)
	}
	sinks, err := eval[[]string](bob, `[...document.querySelectorAll('#grid audio')].map((a) => a.sinkId)`)
	if err != nil || len(sinks) == 0 {
		t.Fatalf("bob's audio elements: %v %v", sinks, err)
	}
	for _, s := range sinks {
		if s != out {
			t.Errorf("an audio element plays to %q, want %q", s, out)
		}
	}
	if a, _ := serverTrackIDs(t, alice); a != audio {
		t.Errorf("server audio track %s after the switch, was %s", a, audio)
	}
}
