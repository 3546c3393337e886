package clustertest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// BenchmarkClusterRouting measures, on one two-node cluster:
//   - join latency (WebSocket dial to `joined`) at the room's owner and
//     through the other node, which relays the signaling over Redis;
//     interleaved, 100 joins of each per b.N;
//   - chat messages relayed through Redis: senders and receivers all
//     connected to the non-owner, so each message crosses Redis once to the
//     owner and once back per receiver.
//
// Run: go test ./internal/clustertest -run '^$' -bench ClusterRouting -benchtime 3x
func BenchmarkClusterRouting(b *testing.B) {
	c := Start(b, Options{Nodes: 2, LogLevel: "warn", Args: []string{"--joins-per-second", "-1"}})
	const room = "bench"
	holder := rawJoin(b, c.Nodes[0].URL(), c.Token("holder", room))
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		drain(holder)
	}()
	defer func() {
		holder.Close()
		<-drained
	}()
	owner, _ := (&call{t: b, c: c, room: room}).ownerNode(context.Background())
	other := c.Nodes[0]
	if owner == other {
		other = c.Nodes[1]
	}

	b.ResetTimer()
	var direct, relayed []time.Duration
	for i := range 100 * b.N {
		urls := [2]string{owner.URL(), other.URL()}
		if i%2 == 1 {
			urls[0], urls[1] = urls[1], urls[0] // neither always goes first
		}
		for _, u := range urls {
			start := time.Now()
			ws := rawJoin(b, u, c.Token(fmt.Sprintf("j%d", i), room))
			d := time.Since(start)
			leave(ws)
			if u == owner.URL() {
				direct = append(direct, d)
			} else {
				relayed = append(relayed, d)
			}
		}
	}
	b.StopTimer()
	report(b, "owner", direct)
	report(b, "relayed", relayed)

	// Chat relayed both ways, at rising offered loads (each sender at 40
	// messages/s, under the per-connection limit) until the receivers fall
	// behind what was offered.
	var best chatRate
	for _, senders := range []int{10, 20, 40, 80} {
		rate := relayChat(b, c, other, room, senders, 20, 3*time.Second)
		b.Logf("chat through %s (relayed both ways): %d senders, %.0f messages/s in, %.0f of %.0f deliveries/s out to 20 relayed receivers",
			other.Name, senders, rate.sent, rate.delivered, 20*rate.sent)
		if rate.delivered > best.delivered {
			best = rate
		}
		if rate.delivered < 0.95*20*rate.sent {
			break
		}
	}
	b.ReportMetric(best.delivered, "relayed-deliveries/s")
	b.ReportMetric(best.sent, "relayed-chats-in/s")
}

func report(b *testing.B, name string, ds []time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	p := func(q float64) float64 {
		return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(p(0.5), name+"-join-p50-ms")
	b.ReportMetric(p(0.99), name+"-join-p99-ms")
	b.Logf("join at %s: n=%d p50=%.2fms p99=%.2fms max=%.2fms", name, len(ds), p(0.5), p(0.99), float64(ds[len(ds)-1])/1e6)
}

// rawJoin opens a WebSocket and joins, returning once `joined` arrived.
func rawJoin(b testing.TB, url, token string) *websocket.Conn {
	b.Helper()
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	ws, _, err := d.Dial(strings.Replace(url, "http://", "ws://", 1)+"/ws", nil)
	if err != nil {
		b.Fatalf("dial %s: %v", url, err)
	}
	data, _ := protocol.Encode(&protocol.Join{Version: protocol.Version, Token: token})
	if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
		b.Fatalf("send join: %v", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			b.Fatalf("join at %s: %v", url, err)
		}
		if strings.HasPrefix(string(msg), `{"type":"joined"`) {
			break
		}
		if strings.HasPrefix(string(msg), `{"type":"error"`) {
			b.Fatalf("join at %s refused: %s", url, msg)
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	return ws
}

func leave(ws *websocket.Conn) {
	data, _ := protocol.Encode(&protocol.Leave{})
	_ = ws.WriteMessage(websocket.TextMessage, data)
	ws.Close()
}

func drain(ws *websocket.Conn) {
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
	}
}

type chatRate struct{ sent, delivered float64 }

// relayChat connects senders and receivers to node n (not the room's
// owner), has each sender post chat at 40/s (under the per-connection
// limit of 50/s) for d, and counts the chat messages the receivers get
// until all have arrived or 10 s passed after the last send.
func relayChat(b *testing.B, c *Cluster, n *Node, room string, senders, receivers int, d time.Duration) chatRate {
	var got atomic.Int64
	var readers sync.WaitGroup
	var rx []*websocket.Conn
	var trouble sync.Map // what ended a connection or an error it got -> count
	note := func(what string) {
		v, _ := trouble.LoadOrStore(what, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	watch := func(ws *websocket.Conn, count *atomic.Int64) {
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				if !strings.Contains(err.Error(), "use of closed") && !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
					note(err.Error())
				}
				return
			}
			switch {
			case count != nil && strings.HasPrefix(string(msg), `{"type":"chatMessage"`):
				count.Add(1)
			case strings.HasPrefix(string(msg), `{"type":"error"`):
				note(string(msg))
			}
		}
	}
	for i := range receivers {
		ws := rawJoin(b, n.URL(), c.Token(fmt.Sprintf("rx%d-%d", senders, i), room))
		rx = append(rx, ws)
		readers.Add(1)
		go func() {
			defer readers.Done()
			watch(ws, &got)
		}()
	}
	var tx []*websocket.Conn
	for i := range senders {
		ws := rawJoin(b, n.URL(), c.Token(fmt.Sprintf("tx%d-%d", senders, i), room))
		readers.Add(1)
		go func() {
			defer readers.Done()
			watch(ws, nil)
		}()
		tx = append(tx, ws)
	}
	var sent atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for i, ws := range tx {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(25 * time.Millisecond)
			defer tick.Stop()
			for k := 0; time.Since(start) < d; k++ {
				data, _ := protocol.Encode(&protocol.Chat{ClientID: fmt.Sprintf("c%d-%d", i, k), Text: "relay"})
				if ws.WriteMessage(websocket.TextMessage, data) != nil {
					return
				}
				sent.Add(1)
				<-tick.C
			}
		}()
	}
	wg.Wait()
	sendTime := time.Since(start)
	want := sent.Load() * int64(receivers)
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	total := time.Since(start)
	if got.Load() < want {
		b.Logf("receivers got %d of %d chat messages", got.Load(), want)
	}
	for _, ws := range append(tx, rx...) {
		leave(ws)
	}
	readers.Wait()
	trouble.Range(func(k, v any) bool {
		b.Logf("%d x %.200s", v.(*atomic.Int64).Load(), k)
		return true
	})
	return chatRate{sent: float64(sent.Load()) / sendTime.Seconds(), delivered: float64(got.Load()) / total.Seconds()}
}
