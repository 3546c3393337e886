package clustertest

import (
	"context"
	"testing"
	"time"
)

func TestTmpCallSingleNode(t *testing.T) {
	c := Start(t, Options{Nodes: 1, NoRedis: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := startCall(t, ctx, c, "tmp", 6)
	t0 := time.Now()
	cl.waitAllEdited(t0, 5, 30*time.Second)
	before := cl.counters()
	c.Nodes[0].Restart()
	cl.waitInRoomOn(c.Nodes[0], 60*time.Second)
	WaitFor(t, 60*time.Second, func() string { return cl.videoSummary() }, func() bool { return cl.allVideoAfter(before, 25) })
	cl.waitAllEdited(time.Now(), 3, 60*time.Second)
	cl.finish(ctx)
	t.Log(cl.editSummary())
}
