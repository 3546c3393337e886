package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBlockedDevicesSayWhatToDo: with camera and microphone permission
// denied, the pre-join screen says so in words and where to allow them,
// and the person can still join to watch and listen.
func TestBlockedDevicesSayWhatToDo(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t, "denied", chromedp.Flag("use-fake-ui-for-media-stream", "deny"))
	b.dumpLogsOnFailure()
	b.mustDo(20*time.Second, "open the page",
		chromedp.Navigate(srv.URL()+"/?room=blocked&name=Dee"),
		chromedp.WaitVisible(chromedp.ID("join")))
	waitFor(t, 15*time.Second, "the pre-join note to explain", func() (bool, string) {
		s, err := eval[string](b, `document.getElementById('preview-note').textContent`)
		return err == nil && strings.Contains(s, "blocked: allow it in the address bar"), fmt.Sprint(s, err)
	})
	b.mustDo(10*time.Second, "join", chromedp.Click(chromedp.ID("join")))
	waitState(t, b, "joined")
	s := callOf(t, b)
	if s.MicOn || s.CamOn {
		t.Errorf("joined with blocked devices, the page says mic %v camera %v", s.MicOn, s.CamOn)
	}
	// Turning the microphone on explains again instead of failing silently.
	b.mustDo(10*time.Second, "click unmute", chromedp.Click(chromedp.ID("ctl-mic")))
	waitFor(t, 10*time.Second, "a notice about the blocked microphone", func() (bool, string) {
		n, err := eval[string](b, `document.getElementById('notice').hidden ? '' : document.getElementById('notice').textContent`)
		return err == nil && strings.Contains(n, "Microphone blocked"), fmt.Sprint(n, err)
	})
	b.screenshot("blocked-devices.png")
}
