package web_test

// Helpers for tests that drive the meeting page through a call.

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// joinByTyping opens the page, types the name and room as a person would,
// clicks Join and waits until the page says it joined. It returns the
// participant id the server gave.
func joinByTyping(t *testing.T, b *browser, pageURL, name, room string) string {
	t.Helper()
	b.mustDo(20*time.Second, "open the page",
		chromedp.Navigate(pageURL),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("room"), room),
		chromedp.Click(chromedp.ID("join")),
	)
	waitState(t, b, "joined")
	id, err := eval[string](b, `window.huddle.participantId`)
	if err != nil || id == "" {
		t.Fatalf("%s: joined without a participant id: %q %v", b.name, id, err)
	}
	return id
}

// waitState waits for window.huddle.state, failing early with the page's
// error if it ends up in "error" instead.
func waitState(t *testing.T, b *browser, want string) {
	t.Helper()
	waitFor(t, 30*time.Second, b.name+" state "+want, func() (bool, string) {
		s, err := eval[struct {
			State     string  `json:"state"`
			LastError *string `json:"lastError"`
		}](b, `({state: window.huddle.state, lastError: window.huddle.lastError})`)
		if err != nil {
			return false, err.Error()
		}
		if s.State == "error" && want != "error" {
			t.Fatalf("%s: page went to state error: %v", b.name, deref(s.LastError))
		}
		return s.State == want, fmt.Sprintf("state=%s lastError=%v", s.State, deref(s.LastError))
	})
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

type videoStat struct {
	ParticipantID string `json:"participantId"`
	Name          string `json:"name"`
	TrackID       string `json:"trackId"`
	FramesDecoded int    `json:"framesDecoded"`
	Width         int    `json:"width"`
	Height        int    `json:"height"`
}

// framesFrom returns the frames b decoded from participant id's video, and
// what it saw, for failure messages.
func framesFrom(b *browser, id string) (videoStat, bool, string) {
	stats, err := eval[[]videoStat](b, `window.huddle.remoteVideoStats()`)
	if err != nil {
		return videoStat{}, false, err.Error()
	}
	for _, s := range stats {
		if s.ParticipantID == id {
			return s, true, fmt.Sprintf("%+v", stats)
		}
	}
	return videoStat{}, false, fmt.Sprintf("no video from %s in %+v", id, stats)
}

// waitVideoFlowing waits until b has decoded frames of participant id's
// video, then until the count grows: a frozen first frame is not a call.
func waitVideoFlowing(t *testing.T, b *browser, id, name string) videoStat {
	t.Helper()
	var first videoStat
	waitFor(t, 30*time.Second, fmt.Sprintf("%s to decode video from %s", b.name, name), func() (bool, string) {
		s, ok, seen := framesFrom(b, id)
		first = s
		return ok && s.FramesDecoded > 0, seen
	})
	var last videoStat
	waitFor(t, 15*time.Second, fmt.Sprintf("%s's decoded frames from %s to increase past %d", b.name, name, first.FramesDecoded), func() (bool, string) {
		s, ok, seen := framesFrom(b, id)
		last = s
		return ok && s.FramesDecoded > first.FramesDecoded, seen
	})
	if last.Width == 0 || last.Height == 0 {
		t.Errorf("%s: video from %s decodes at %dx%d", b.name, name, last.Width, last.Height)
	}
	if last.Name != name {
		t.Errorf("%s: remoteVideoStats names %s %q, want %q", b.name, id, last.Name, name)
	}
	return last
}

type tileInfo struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Local      bool   `json:"local"`
	VideoWidth int    `json:"videoWidth"`
	Visible    bool   `json:"visible"`
}

func tiles(b *browser) ([]tileInfo, error) {
	return eval[[]tileInfo](b, `[...document.querySelectorAll('#grid .tile')].map((t) => {
		const v = t.querySelector('video');
		const r = t.getBoundingClientRect();
		return {
			id: t.dataset.participantId,
			name: t.querySelector('.name').textContent,
			local: t.classList.contains('local'),
			videoWidth: v.videoWidth,
			visible: r.width > 0 && r.height > 0 && getComputedStyle(v).visibility === 'visible',
		};
	})`)
}

// waitTile waits until b shows participant id's tile with the name and a
// playing, visible video.
func waitTile(t *testing.T, b *browser, id, name string) {
	t.Helper()
	waitFor(t, 15*time.Second, fmt.Sprintf("%s to show %s's tile with video", b.name, name), func() (bool, string) {
		ts, err := tiles(b)
		if err != nil {
			return false, err.Error()
		}
		for _, tl := range ts {
			if tl.ID == id {
				return tl.Name == name && tl.VideoWidth > 0 && tl.Visible && !tl.Local, fmt.Sprintf("%+v", ts)
			}
		}
		return false, fmt.Sprintf("no tile for %s in %+v", id, ts)
	})
}
