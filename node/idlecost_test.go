package node

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/signaling"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Idle joined participants (no media) are cheap: at most 20 KB of server
// memory (heap and goroutine stacks) and at most 3 goroutines each. The
// clients run in another process (this test binary, as a helper), so that
// what is measured here, from the runtime after a GC, is the server alone.
func TestIdleParticipantCost(t *testing.T) {
	const n = 500
	s := startTestServer(t, Config{Signaling: signaling.Config{JoinRate: -1}})
	key, secret, _ := s.DevKey()
	base := sample()

	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientsHelper$")
	cmd.Env = append(os.Environ(), "HUDDLE_IDLE_HELPER=1",
		"HUDDLE_IDLE_URL=ws"+strings.TrimPrefix(s.URL(), "http")+"/ws",
		"HUDDLE_IDLE_N="+strconv.Itoa(n), "HUDDLE_IDLE_KEY="+key, "HUDDLE_IDLE_SECRET="+secret)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "READY" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the client helper failed")
		}
	case <-time.After(120 * time.Second):
		t.Fatal("the client helper did not join everyone")
	}
	if got := countMembers(s); got != n {
		t.Fatalf("%d members joined, want %d", got, n)
	}
	with := sample()
	perBytes := (with.bytes - base.bytes) / n
	perG := float64(with.goroutines-base.goroutines) / n
	t.Logf("per idle participant: %d bytes (heap and stacks; stacks %d), %.2f goroutines", perBytes, (with.stack-base.stack)/n, perG)
	if perBytes > 20<<10 {
		t.Errorf("an idle participant costs %d bytes, want at most 20 KB", perBytes)
	}
	if perG > 3 {
		t.Errorf("an idle participant costs %.2f goroutines, want at most 3", perG)
	}
}

func countMembers(s *Node) int { return s.sig.Participants() }

type cost struct {
	bytes      int64
	stack      int64
	goroutines int
}

func sample() cost {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return cost{bytes: int64(ms.HeapInuse + ms.StackInuse), stack: int64(ms.StackInuse), goroutines: runtime.NumGoroutine()}
}

// TestIdleClientsHelper is the client side of TestIdleParticipantCost, run
// in its own process: it joins N participants over 25 rooms, answers
// pings, says READY and holds until its stdin closes.
func TestIdleClientsHelper(t *testing.T) {
	if os.Getenv("HUDDLE_IDLE_HELPER") == "" {
		t.Skip("helper process of TestIdleParticipantCost")
	}
	n, _ := strconv.Atoi(os.Getenv("HUDDLE_IDLE_N"))
	url, key, secret := os.Getenv("HUDDLE_IDLE_URL"), os.Getenv("HUDDLE_IDLE_KEY"), os.Getenv("HUDDLE_IDLE_SECRET")
	conns := make([]*websocket.Conn, 0, n)
	for i := 0; i < n; i++ {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := protocol.Encode(&protocol.Join{Version: protocol.Version, Token: mintToken(t, key, secret, fmt.Sprint("idle-", i), fmt.Sprint("room-", i%25))})
		if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
			t.Fatal(err)
		}
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(string(msg), `{"type":"joined"`) {
				break
			}
		}
		conns = append(conns, ws)
		go func() { // answer pings, drop room events
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	fmt.Println("READY")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}
