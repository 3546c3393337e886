package clustertest

import (
	"testing"
	"time"
)

func BenchmarkTmpSingle(b *testing.B) {
	c := Start(b, Options{Nodes: 1, NoRedis: true, LogLevel: "warn", Args: []string{"--joins-per-second", "-1"}})
	holder := rawJoin(b, c.Nodes[0].URL(), c.Token("holder", "bench"))
	defer holder.Close()
	go drain(holder)
	var ds []time.Duration
	for i := range 100 {
		start := time.Now()
		ws := rawJoin(b, c.Nodes[0].URL(), c.Token("j"+string(rune('a'+i%26))+string(rune('a'+i/26)), "bench"))
		ds = append(ds, time.Since(start))
		leave(ws)
	}
	report(b, "single", ds)
	rate := relayChat(b, c, c.Nodes[0], "bench", 20, 20, 3*time.Second)
	b.Logf("%+v", rate)
}
