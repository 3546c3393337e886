package clustertest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/sdk"
)

// call is a meeting of bots through the cluster's load balancer: each
// publishes synthetic VP8 and edits one shared document.
type call struct {
	t     testing.TB
	c     *Cluster
	room  string
	bots  []*bot
	docs  []*sdk.Document
	docID string

	stopEdits context.CancelFunc
	edits     sync.WaitGroup
}

// editEvery is how often each bot submits an edit (one at a time).
const editEvery = 100 * time.Millisecond

// startCall joins n bots through the load balancer (so they land on
// different nodes), waits until each receives every other's video, and
// starts the edits.
func startCall(t testing.TB, ctx context.Context, c *Cluster, room string, n int) *call {
	t.Helper()
	cl := &call{t: t, c: c, room: room}
	for i := range n {
		cl.bots = append(cl.bots, joinBot(t, ctx, c, c.URL(), fmt.Sprintf("b%d", i+1), room, true))
	}
	info, err := cl.bots[0].room.Docs().Create(ctx, "notes", "")
	if err != nil {
		t.Fatalf("create the document: %v", err)
	}
	cl.docID = info.ID
	for _, b := range cl.bots {
		d, err := b.room.Docs().Open(ctx, info.ID)
		if err != nil {
			t.Fatalf("%s opens the document: %v", b.id, err)
		}
		cl.docs = append(cl.docs, d)
	}
	WaitFor(t, 60*time.Second, func() string { return "every bot to see every other's video: " + cl.videoSummary() }, func() bool {
		return cl.allVideoAfter(nil, 10)
	})
	ectx, cancel := context.WithCancel(context.Background())
	cl.stopEdits = cancel
	for i, b := range cl.bots {
		cl.edits.Add(1)
		go func() {
			defer cl.edits.Done()
			b.edit(ectx, cl.docs[i], editEvery)
		}()
	}
	t.Cleanup(cl.stopEditing)
	return cl
}

// stopEditing stops the edit loops and waits for them.
func (cl *call) stopEditing() {
	cl.stopEdits()
	cl.edits.Wait()
}

// counters returns, per receiving bot and publisher, the highest frame
// counter received so far.
func (cl *call) counters() map[[2]string]uint32 {
	out := map[[2]string]uint32{}
	for _, rx := range cl.bots {
		for _, tx := range cl.bots {
			if rx == tx {
				continue
			}
			if m, ok := rx.maxCounter(tx.id); ok {
				out[[2]string{rx.id, tx.id}] = m
			}
		}
	}
	return out
}

// allVideoAfter reports whether every bot has received, from every other,
// a frame at least margin counters newer than what it had in before (nil:
// any frame past margin). Counters grow by one per 20 ms frame, so this
// says fresh video arrived, not how fast.
func (cl *call) allVideoAfter(before map[[2]string]uint32, margin uint32) bool {
	now := cl.counters()
	for _, rx := range cl.bots {
		for _, tx := range cl.bots {
			if rx == tx {
				continue
			}
			k := [2]string{rx.id, tx.id}
			m, ok := now[k]
			if !ok || m < before[k]+margin {
				return false
			}
		}
	}
	return true
}

func (cl *call) videoSummary() string {
	var parts []string
	for k, v := range cl.counters() {
		parts = append(parts, fmt.Sprintf("%s<-%s:%d", k[0], k[1], v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// waitAllEdited waits until every bot has had n more edits acknowledged
// after t0.
func (cl *call) waitAllEdited(t0 time.Time, n int, timeout time.Duration) {
	cl.t.Helper()
	WaitFor(cl.t, timeout, func() string {
		return fmt.Sprintf("%d acknowledged edits per bot after %s: %s", n, t0.Format(time.StampMilli), cl.editSummary())
	}, func() bool {
		for _, b := range cl.bots {
			if b.edits.ackedSince(t0) < n {
				return false
			}
		}
		return true
	})
}

func (cl *call) editSummary() string {
	var parts []string
	for _, b := range cl.bots {
		s, a, r := b.edits.snapshot()
		parts = append(parts, fmt.Sprintf("%s sent %d acked %d refused %d", b.id, len(s), len(a), len(r)))
	}
	return strings.Join(parts, "; ")
}

// waitInRoomOn waits until node's admin API lists exactly the call's bots
// in the room, each under the participant id the bot itself has now: every
// bot rejoined the room on that node.
func (cl *call) waitInRoomOn(n *Node, timeout time.Duration) {
	cl.t.Helper()
	var last string
	WaitFor(cl.t, timeout, func() string { return fmt.Sprintf("every bot in room %s on %s: %s", cl.room, n.Name, last) }, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		r, err := n.Admin().GetRoom(ctx, cl.room)
		if err != nil {
			last = err.Error()
			return false
		}
		got := map[string]string{}
		for _, p := range r.Participants {
			got[p.Identity] = p.ID
		}
		want := map[string]string{}
		for _, b := range cl.bots {
			want[b.id] = b.room.Self().ID
		}
		last = fmt.Sprintf("listed %v, bots are %v", got, want)
		for id, pid := range want {
			if got[id] != pid {
				return false
			}
		}
		return len(got) == len(want)
	})
}

// finish stops the edits, waits until every bot's last edit is settled,
// and checks the document as a fresh participant reads it: every
// acknowledged edit exactly once, none twice; each bot's copy converges on
// it.
func (cl *call) finish(ctx context.Context) string {
	cl.t.Helper()
	cl.stopEditing()
	for i, d := range cl.docs {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := d.WaitSynced(wctx)
		cancel()
		if err != nil {
			cl.t.Logf("%s's last edit: %v", cl.bots[i].id, err)
		}
	}
	text := readDocument(cl.t, ctx, cl.c, cl.c.URL(), cl.room, cl.docID)
	acked, sent := checkDocument(cl.t, text, cl.bots)
	cl.t.Logf("document: %d edits sent, %d acknowledged, %d code points", sent, acked, len([]rune(text)))
	for i, d := range cl.docs {
		WaitFor(cl.t, 20*time.Second, func() string {
			return fmt.Sprintf("%s's copy to converge (%d vs %d code points)", cl.bots[i].id, d.Len(), len([]rune(text)))
		}, func() bool { return d.Text() == text })
	}
	return text
}

// ownerNode waits for the room's owner record and returns the node.
func (cl *call) ownerNode(ctx context.Context, not ...*Node) (*Node, Owner) {
	cl.t.Helper()
	var n *Node
	var o Owner
	WaitFor(cl.t, 60*time.Second, func() string { return fmt.Sprintf("an owner of %s besides %v (now %+v)", cl.room, names(not), o) }, func() bool {
		var err error
		n, o, err = cl.c.OwnerNode(ctx, cl.room)
		return err == nil && n != nil && !slices.Contains(not, n)
	})
	return n, o
}

func names(ns []*Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}
