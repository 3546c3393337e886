package whip_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// whipClient is a WHIP/WHEP client written from RFC 9725 with plain
// pion/webrtc: POST the offer, apply the answer, trickle candidates with
// PATCH to the session URL, DELETE it to end.
type whipClient struct {
	t        *testing.T
	base     string // the server's URL
	endpoint string // /whip or /whep
	token    string
	pc       *webrtc.PeerConnection

	mu       sync.Mutex
	location string
	etag     string
	links    []string // Link headers of the answer
	pending  []*webrtc.ICECandidate
}

// loopbackAPI gathers only loopback candidates, as the server under test
// listens only there.
func loopbackAPI() *webrtc.API {
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

func newClient(t *testing.T, base, endpoint, token string) *whipClient {
	t.Helper()
	pc, err := loopbackAPI().NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle})
	if err != nil {
		t.Fatal(err)
	}
	c := &whipClient{t: t, base: base, endpoint: endpoint, token: token, pc: pc}
	t.Cleanup(func() { pc.Close() })
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		c.mu.Lock()
		loc := c.location
		if loc == "" {
			c.pending = append(c.pending, cand)
		}
		c.mu.Unlock()
		if loc != "" {
			c.trickle(cand)
		}
	})
	return c
}

// request sends one HTTP request with the client's token.
func (c *whipClient) request(method, url, ctype, body, token string, header ...string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// connect sends the offer without waiting for candidates (they trickle)
// and applies the answer.
func (c *whipClient) connect() {
	c.t.Helper()
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.pc.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	resp, body := c.request(http.MethodPost, c.base+c.endpoint, "application/sdp", offer.SDP, c.token)
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("POST %s: %s %s", c.endpoint, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		c.t.Fatalf("answer content type %q", ct)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, c.endpoint+"/") {
		c.t.Fatalf("Location %q", loc)
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		c.t.Fatalf("answer: %v", err)
	}
	c.mu.Lock()
	c.location, c.etag, c.links = c.base+loc, resp.Header.Get("ETag"), resp.Header.Values("Link")
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, cand := range pending {
		c.trickle(cand)
	}
}

// trickle PATCHes one candidate as an SDP fragment (RFC 8840).
func (c *whipClient) trickle(cand *webrtc.ICECandidate) {
	init := cand.ToJSON()
	local := c.pc.LocalDescription()
	parsed, err := local.Unmarshal()
	if err != nil {
		c.t.Error(err)
		return
	}
	ufrag, _ := parsed.MediaDescriptions[0].Attribute("ice-ufrag")
	pwd, _ := parsed.MediaDescriptions[0].Attribute("ice-pwd")
	mid := "0"
	if init.SDPMid != nil {
		mid = *init.SDPMid
	}
	frag := fmt.Sprintf("a=ice-ufrag:%s\r\na=ice-pwd:%s\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:%s\r\na=%s\r\n", ufrag, pwd, mid, init.Candidate)
	c.mu.Lock()
	loc, etag := c.location, c.etag
	c.mu.Unlock()
	resp, body := c.request(http.MethodPatch, loc, "application/trickle-ice-sdpfrag", frag, c.token, "If-Match", etag)
	if resp.StatusCode != http.StatusNoContent {
		c.t.Errorf("PATCH candidate: %s %s", resp.Status, body)
	}
}

// end DELETEs the session.
func (c *whipClient) end() int {
	c.t.Helper()
	c.mu.Lock()
	loc := c.location
	c.mu.Unlock()
	resp, _ := c.request(http.MethodDelete, loc, "", "", c.token)
	return resp.StatusCode
}

// remoteUfrag is the client's own ICE username fragment (the server's
// remote one).
func (c *whipClient) remoteUfrag() string {
	c.t.Helper()
	parsed, err := c.pc.LocalDescription().Unmarshal()
	if err != nil {
		c.t.Fatal(err)
	}
	u, _ := parsed.MediaDescriptions[0].Attribute("ice-ufrag")
	return u
}
