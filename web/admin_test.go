package web_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

type dashRoom struct {
	Name         string
	Participants []struct {
		Identity string
		Samples  []float64
		Tracks   int
		RecvBps  float64
	}
}

// The dashboard, in chromium, follows the server live: a room appears, a
// participant joins and publishes video while its bitrate chart rises
// from zero, a viewer shows what it receives, and the room disappears when
// it ends.
func TestDashboardShowsRoomsLive(t *testing.T) {
	srv := startServer(t)
	key, secret, _ := srv.DevKey()
	tok, err := auth.Mint(key, secret, auth.Claims{Identity: "ops", Room: admin.AllRooms, Grants: protocol.Grants{RoomAdmin: true}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, "dashboard")
	b.dumpLogsOnFailure()
	b.mustDo(20*time.Second, "open the dashboard",
		chromedp.Navigate(srv.URL()+"/admin/#token="+url.QueryEscape(tok)),
		chromedp.WaitVisible(chromedp.ID("rooms")),
	)
	model := func() ([]dashRoom, string) {
		raw, err := eval[string](b, `JSON.stringify(window.huddleAdmin.rooms())`)
		if err != nil {
			return nil, err.Error()
		}
		var rs []dashRoom
		_ = json.Unmarshal([]byte(raw), &rs)
		return rs, raw
	}
	waitFor(t, 20*time.Second, "the stream to be live", func() (bool, string) {
		s, err := eval[string](b, `document.getElementById('status').textContent`)
		return err == nil && s == "live", s
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bot, err := sdk.Join(ctx, srv.URL(), sdktest.Token(t, srv, "camera-bot", "standup", protocol.AllGrants()), sdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bot.Leave()
	waitFor(t, 20*time.Second, "the room and its participant on the page", func() (bool, string) {
		text, _ := eval[string](b, `document.getElementById('rooms').textContent`)
		return strings.Contains(text, "standup") && strings.Contains(text, "camera-bot"), text
	})
	pub, err := sdktest.Publish(bot, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Stop()
	// Rising: the chart starts at zero (no media) and reaches a positive
	// bitrate, and the canvas has drawn those points.
	waitFor(t, 30*time.Second, "a rising bitrate chart", func() (bool, string) {
		rs, raw := model()
		for _, r := range rs {
			for _, p := range r.Participants {
				if p.Identity != "camera-bot" || len(p.Samples) < 3 || p.Tracks != 1 {
					continue
				}
				first, last := p.Samples[0], p.Samples[len(p.Samples)-1]
				if first == 0 && last > 1000 {
					return true, raw
				}
			}
		}
		return false, raw
	})
	viewer, err := sdk.Join(ctx, srv.URL(), sdktest.Token(t, srv, "viewer", "standup", protocol.AllGrants()), sdk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Leave()
	waitFor(t, 30*time.Second, "the viewer's receive bitrate", func() (bool, string) {
		rs, raw := model()
		for _, r := range rs {
			for _, p := range r.Participants {
				if p.Identity == "viewer" && p.RecvBps > 1000 {
					return true, raw
				}
			}
		}
		return false, raw
	})
	waitFor(t, 10*time.Second, "the chart to be drawn", func() (bool, string) {
		n, err := eval[string](b, `document.querySelector('tr[data-identity="camera-bot"] canvas').dataset.points || '0'`)
		return err == nil && n != "0" && n != "", n
	})
	pub.Stop()
	bot.Leave()
	viewer.Leave()
	waitFor(t, 20*time.Second, "the room to disappear", func() (bool, string) {
		text, _ := eval[string](b, `document.getElementById('rooms').textContent`)
		return !strings.Contains(text, "standup"), text
	})
	for _, p := range b.problems() {
		t.Errorf("page problem: %s", p)
	}
}
