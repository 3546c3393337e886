package node

import (
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// A joined participant that sends nothing must survive past the join
// deadline: the join itself ends the join deadline, pongs keep it alive.
func TestJoinClearsJoinDeadline(t *testing.T) {
	// The first ping comes long after the join deadline would have fired.
	s := startTestServer(t, Config{Signaling: signaling.Config{JoinTimeout: 200 * time.Millisecond, PingInterval: 2 * time.Second}})
	c := dialWS(t, s)
	c.joinAs(s, "quiet", "r")
	pinged := make(chan struct{}, 1)
	c.ws.SetPingHandler(func(data string) error {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	_ = c.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	ended := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.ws.ReadMessage(); err != nil {
				ended <- err
				return
			}
		}
	}()
	select {
	case <-pinged: // still connected at the first ping, after the join deadline
	case err := <-ended:
		t.Fatalf("a joined participant was dropped before the first ping: %v", err)
	}
}

// The first message a newcomer gets is its own joined, even when others
// join at the same moment.
func TestJoinedComesFirstUnderConcurrentJoins(t *testing.T) {
	s := startTestServer(t, Config{Signaling: signaling.Config{JoinRate: -1}}) // many joins from one address
	for round := 0; round < 5 && !t.Failed(); round++ {
		concurrentJoins(t, s, "crowd"+itoa(round))
	}
}

func concurrentJoins(t *testing.T, s *Node, room string) {
	const n = 60
	clients := make([]*wsClient, n)
	for i := range clients {
		clients[i] = dialWS(t, s)
	}
	key, secret, _ := s.DevKey()
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := mintToken(t, key, secret, "p"+itoa(i), room)
			data, _ := protocol.Encode(&protocol.Join{Version: protocol.Version, Token: tok})
			if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
				errs <- err.Error()
				return
			}
			_ = c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, first, err := c.ws.ReadMessage()
			if err != nil {
				errs <- err.Error()
				return
			}
			if !strings.HasPrefix(string(first), `{"type":"joined"`) {
				errs <- "first message " + string(first[:min(len(first), 60)])
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// Participant ids carry at least 96 random bits: the documents hub keys
// participants by id across the whole server.
func TestParticipantIDsHave96RandomBits(t *testing.T) {
	s := startTestServer(t, Config{})
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		j := dialWS(t, s).joinAs(s, "x"+string(rune('a'+i)), "r")
		id := j.Participant.ID
		raw, err := hex.DecodeString(strings.TrimPrefix(id, "PA_"))
		if err != nil || len(raw)*8 < 96 {
			t.Errorf("participant id %q has fewer than 96 random bits", id)
		}
		if seen[id] {
			t.Errorf("id %s repeated", id)
		}
		seen[id] = true
	}
}

// Dev mode answers only localhost names: a DNS-rebound name (Host
// evil.example) gets neither tokens nor WebSockets.
func TestDevModeRefusesForeignHosts(t *testing.T) {
	s := startTestServer(t, Config{})
	get := func(path string, hdr http.Header) int {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+path, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		if h := hdr.Get("Host"); h != "" {
			req.Host = h
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	port := s.listener.Addr().(*net.TCPAddr).Port
	evil := "rebind.evil.example:" + itoa(port)
	if c := get("/api/dev/token?name=a&room=r", http.Header{"Host": {evil}}); c != http.StatusForbidden {
		t.Errorf("dev token for Host %s: %d, want 403", evil, c)
	}
	if c := get("/api/dev/token?name=a&room=r", http.Header{"Origin": {"http://" + evil}}); c != http.StatusForbidden {
		t.Errorf("dev token for Origin %s: %d, want 403", evil, c)
	}
	if c := get("/api/dev/token?name=a&room=r", http.Header{"Host": {"localhost:" + itoa(port)}, "Origin": {"http://localhost:" + itoa(port)}}); c != http.StatusOK {
		t.Errorf("dev token for localhost: %d, want 200", c)
	}
	ws := func(host, origin string) error {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		d := websocket.Dialer{NetDial: func(network, _ string) (net.Conn, error) {
			return net.Dial(network, s.listener.Addr().String())
		}}
		c, resp, err := d.Dial("ws://"+host+"/ws", h)
		if err == nil {
			c.Close()
			return nil
		}
		if resp != nil && resp.StatusCode == http.StatusForbidden {
			return errForbidden
		}
		return err
	}
	if err := ws(evil, "http://"+evil); !errors.Is(err, errForbidden) {
		t.Errorf("websocket for Host %s: %v, want 403", evil, err)
	}
	if err := ws("localhost:"+itoa(port), "http://localhost:"+itoa(port)); err != nil {
		t.Errorf("websocket for localhost: %v", err)
	}
	if err := ws("127.0.0.1:"+itoa(port), ""); err != nil {
		t.Errorf("websocket for 127.0.0.1 without Origin (a bot): %v", err)
	}
}

var errForbidden = errors.New("403")

// joined never carries null lists: alone, participants is [], and the own
// participant has tracks [] (the docs promise lists).
func TestJoinedListsAreNeverNull(t *testing.T) {
	s := startTestServer(t, Config{})
	c := dialWS(t, s)
	key, secret, _ := s.DevKey()
	c.sendMsg(&protocol.Join{Version: protocol.Version, Token: mintToken(t, key, secret, "solo", "empty")})
	_ = c.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, raw, err := c.ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"participants":[]`, `"tracks":[]`, `"chat":[]`, `"iceServers":[]`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("joined lacks %s: %s", want, raw)
		}
	}
	if strings.Contains(string(raw), "null") {
		t.Errorf("joined has a null: %s", raw)
	}
}

// Close while clients are still connecting: a WebSocket handler can be
// past its upgrade when the HTTP server shuts down, and its session must
// either be counted before the server waits for its sessions or be
// refused; never start after that wait (an unjoined goroutine, which the
// race detector reports as an Add racing the Wait). Every connection the
// server accepted is told to reconnect, joined or not.
func TestCloseWhileClientsConnect(t *testing.T) {
	for round := 0; round < 8; round++ {
		s := startTestServer(t, Config{})
		url := "ws" + strings.TrimPrefix(s.URL(), "http") + "/ws"
		var (
			mu       sync.Mutex
			accepted []*websocket.Conn
			wg       sync.WaitGroup
			closed   = make(chan struct{})
		)
		for d := 0; d < 4; d++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, _, err := websocket.DefaultDialer.Dial(url, nil)
					if err != nil {
						select {
						case <-closed:
							return
						default:
							continue // refused by the join rate; try again
						}
					}
					mu.Lock()
					accepted = append(accepted, c)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(round) * 5 * time.Millisecond) // where in the dialing Close lands
		s.Close()
		close(closed)
		wg.Wait()
		for _, c := range accepted {
			// Every client, joined or not, was told to reconnect; none
			// was left to its join deadline (which held Close for 10 s).
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				_, _, err := c.ReadMessage()
				if err == nil {
					continue
				}
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != protocol.CloseServiceRestart {
					t.Fatalf("round %d: a connection accepted before Close ended with %v, want close code %d", round, err, protocol.CloseServiceRestart)
				}
				break
			}
			c.Close()
		}
	}
}
