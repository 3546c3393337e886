package client

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/huddle-rtc/huddle/collab/ot"
)

// miniServer is the smallest server-authoritative OT: transform an incoming
// op over the log since its base revision (the log wins Left), append it.
type miniServer struct {
	text string
	log  []logged
	seen map[string]int64 // clientOpID -> revision, for de-duplication
}

type logged struct {
	id string
	op ot.Op
}

func (s *miniServer) submit(sub Submission) (int64, error) {
	if rev, ok := s.seen[sub.ClientOpID]; ok {
		return rev, nil
	}
	op := sub.Op
	for _, l := range s.log[sub.BaseRev:] {
		op = ot.Transform(op, l.op, ot.Right)
	}
	text, err := ot.Apply(s.text, op)
	if err != nil {
		return 0, err
	}
	s.text = text
	s.log = append(s.log, logged{sub.ClientOpID, op})
	s.seen[sub.ClientOpID] = int64(len(s.log))
	return int64(len(s.log)), nil
}

func randEdit(r *rand.Rand, n int) ot.Op {
	pos := r.Intn(n + 1)
	op := ot.Op{}.Retain(pos)
	if n > pos && r.Intn(3) == 0 {
		return op.Delete(1 + r.Intn(min(3, n-pos)))
	}
	return op.Insert([]string{"a", "é", "😀", "中文", "xy"}[r.Intn(5)])
}

// TestConvergeWithDelays: clients edit concurrently; submissions reach the
// server late and some are sent twice; every client ends with the server
// text once everything is delivered.
func TestConvergeWithDelays(t *testing.T) {
	for seed := int64(1); seed <= 50; seed++ {
		r := rand.New(rand.NewSource(seed))
		srv := &miniServer{seen: map[string]int64{}}
		const nc = 4
		clients := make([]*Client, nc)
		outbox := make([][]Submission, nc) // not yet delivered to the server
		delivered := make([]int, nc)       // how much of the log each client has seen
		for i := range clients {
			clients[i] = New(fmt.Sprintf("c%d-", i), 0, "")
		}
		deliver := func(i int) {
			c := clients[i]
			for ; delivered[i] < len(srv.log); delivered[i]++ {
				l := srv.log[delivered[i]]
				if _, send, err := c.Receive(int64(delivered[i]+1), l.id, l.op); err != nil {
					t.Fatalf("seed %d client %d: %v", seed, i, err)
				} else if send != nil {
					outbox[i] = append(outbox[i], *send)
				}
			}
		}
		for step := 0; step < 300; step++ {
			i := r.Intn(nc)
			switch r.Intn(4) {
			case 0, 1:
				send, err := clients[i].ApplyLocal(randEdit(r, clients[i].Len()))
				if err != nil {
					t.Fatal(err)
				}
				if send != nil {
					outbox[i] = append(outbox[i], *send)
				}
			case 2:
				if len(outbox[i]) > 0 {
					sub := outbox[i][0]
					outbox[i] = outbox[i][1:]
					if _, err := srv.submit(sub); err != nil {
						t.Fatalf("seed %d: submit: %v", seed, err)
					}
					if r.Intn(4) == 0 { // a duplicate after a "reconnect"
						if _, err := srv.submit(sub); err != nil {
							t.Fatal(err)
						}
					}
				}
			case 3:
				deliver(i)
			}
		}
		for busy := true; busy; {
			busy = false
			for i := range clients {
				for len(outbox[i]) > 0 {
					busy = true
					if _, err := srv.submit(outbox[i][0]); err != nil {
						t.Fatal(err)
					}
					outbox[i] = outbox[i][1:]
				}
				deliver(i)
				busy = busy || len(outbox[i]) > 0
			}
		}
		for i, c := range clients {
			if c.Text() != srv.text || c.State() != Synchronized {
				t.Fatalf("seed %d client %d: %q (%v) != server %q", seed, i, c.Text(), c.State(), srv.text)
			}
		}
	}
}

func TestStatesAndResubmit(t *testing.T) {
	c := New("a", 3, "héllo")
	if c.State() != Synchronized || c.Resubmit() != nil {
		t.Fatal("new client must be synchronized")
	}
	s1, err := c.ApplyLocal(ot.Op{}.Retain(5).Insert("!"))
	if err != nil || s1 == nil || s1.BaseRev != 3 || c.State() != AwaitingConfirm {
		t.Fatalf("first edit: %v %v %v", s1, err, c.State())
	}
	if s, _ := c.ApplyLocal(ot.Op{}.Insert("¡")); s != nil || c.State() != AwaitingWithBuffer {
		t.Fatal("second edit must be buffered")
	}
	if s, _ := c.ApplyLocal(ot.Op{}.Retain(1).Insert("x")); s != nil {
		t.Fatal("third edit must be buffered")
	}
	re := c.Resubmit()
	if re.ClientOpID != s1.ClientOpID || re.BaseRev != 3 || !re.Op.Equal(s1.Op) {
		t.Fatalf("resubmit changed the op: %+v vs %+v", re, s1)
	}
	// A remote op, then the ack.
	view, err := c.Remote(4, ot.Op{}.Insert("Z"))
	if err != nil || view.String() != `["Z"]` {
		t.Fatalf("remote: %v %v", view, err)
	}
	if c.Text() != "Z¡xhéllo!" {
		t.Fatalf("text %q", c.Text())
	}
	if sel, ok := c.RemoteSelection(ot.Selection{Anchor: 1, Head: 2}, 4); !ok || sel != (ot.Selection{Anchor: 1, Head: 4}) {
		t.Fatalf("remote selection %+v %v", sel, ok)
	}
	if _, err := c.Ack(6, s1.ClientOpID); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("out-of-order ack: %v", err)
	}
	if _, err := c.Ack(5, "nope"); !errors.Is(err, ErrUnexpectedAck) {
		t.Fatalf("unexpected ack: %v", err)
	}
	s2, err := c.Ack(5, s1.ClientOpID)
	if err != nil || s2 == nil || s2.BaseRev != 5 || s2.ClientOpID == s1.ClientOpID || c.State() != AwaitingConfirm {
		t.Fatalf("ack: %+v %v %v", s2, err, c.State())
	}
	if _, err := c.ApplyLocal(ot.Op{}.Retain(100).Insert("x")); !errors.Is(err, ot.ErrInvalidOp) {
		t.Fatalf("bad local op: %v", err)
	}
	if _, err := c.Ack(6, s2.ClientOpID); err != nil || c.State() != Synchronized {
		t.Fatal(err)
	}
}

// A submission lost with the connection is resubmitted after the catch-up
// against the current revision, so the server does not transform it over
// the caught-up ops a second time.
func TestResubmitAfterCatchUpUsesCurrentRevision(t *testing.T) {
	server := "hello"
	c := New("p-", 0, server)
	sub, err := c.ApplyLocal(ot.Op{}.Insert("X").Retain(5)) // lost with the connection
	if err != nil {
		t.Fatal(err)
	}
	// Meanwhile others made revisions 1 and 2.
	others := []ot.Op{ot.Op{}.Retain(5).Insert("!"), ot.Op{}.Insert(">").Retain(6)}
	for i, op := range others {
		if server, err = ot.Apply(server, op); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Remote(int64(i+1), op); err != nil {
			t.Fatal(err)
		}
	}
	re := c.Resubmit()
	if re == nil || re.ClientOpID != sub.ClientOpID {
		t.Fatalf("resubmit = %+v, want the lost op %s", re, sub.ClientOpID)
	}
	if re.BaseRev != 2 {
		t.Fatalf("resubmitted against revision %d, want the current 2", re.BaseRev)
	}
	// The server applies it as of its base: nothing to transform over.
	if server, err = ot.Apply(server, re.Op); err != nil {
		t.Fatal(err)
	}
	if server != c.Text() || server != ">Xhello!" {
		t.Fatalf("server %q, client %q, want both \">Xhello!\"", server, c.Text())
	}
}

// TestStamps: an edit is stamped with the revisions seen when it was typed
// (Seen), and an edit typed while another is in flight is marked Held;
// the stamps survive composing the buffer and being sent after the ack.
func TestStamps(t *testing.T) {
	c := New("a", 3, "xy")
	s1, err := c.ApplyLocal(ot.Op{}.Retain(1).Insert("p"))
	if err != nil || s1.Op[1].Seen != 4 || s1.Op[1].Held {
		t.Fatalf("first edit: %v %v", s1.Op, err)
	}
	if _, err := c.ApplyLocal(ot.Op{}.Retain(2).Insert("q")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Remote(4, ot.Op{}.Retain(2).Insert("r")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ApplyLocal(ot.Op{}.Insert("s")); err != nil {
		t.Fatal(err)
	}
	s2, err := c.Ack(5, s1.ClientOpID)
	if err != nil || s2 == nil {
		t.Fatalf("ack: %v %v", s2, err)
	}
	want := `[{"i":"s","s":5,"h":1},2,{"i":"q","s":4,"h":1}]`
	if got := s2.Op.String(); got != want {
		t.Fatalf("buffered edits sent as %s, want %s", got, want)
	}
}
