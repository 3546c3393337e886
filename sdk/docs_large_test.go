package sdk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/huddle-rtc/huddle/collab"
	"github.com/huddle-rtc/huddle/sdk"
	"github.com/huddle-rtc/huddle/sdk/sdktest"
)

// TestDocsSevenMegabytes: a 7 MB document (larger, as JSON, than the
// server's default 8 MiB per-participant queue) opens in a new client
// while another keeps editing it; the server streams the snapshot under
// backpressure and cuts nobody off, and both end with the server's text.
func TestDocsSevenMegabytes(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	big := sdktest.BigText(7 << 20)
	meta, err := srv.Documents().CreateDoc(ctx, collab.CreateRequest{Room: "big7", Title: "big", Text: big})
	if err != nil {
		t.Fatal(err)
	}
	a := join(t, ctx, srv, "alice", "big7", sdk.Options{})
	da, err := a.Docs().Open(ctx, meta.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Alice types at the top while Bob opens it.
	stopTyping := sdktest.TypeAtTop(t, da, 250*time.Millisecond)
	b := join(t, ctx, srv, "bob", "big7", sdk.Options{})
	opened := time.Now()
	db, err := b.Docs().Open(ctx, meta.ID)
	typed := stopTyping()
	if err != nil {
		t.Fatalf("bob's open: %v", err)
	}
	tOpen := time.Since(opened)
	if err := da.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := srv.Documents().Text(ctx, meta.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both at the server's text", 60*time.Second, func() bool {
		return da.Text() == snap.Text && db.Text() == snap.Text
	})
	st := srv.DocumentHub().Stats()
	if st.PeakQueued >= 8<<20 {
		t.Errorf("a participant's queue peaked at %d bytes", st.PeakQueued)
	}
	t.Logf("bob opened 7 MB in %v while alice made %d edits; hub %+v", tOpen.Round(time.Millisecond), typed, st)
}

// TestDocsOpenCutOff: when the server ends a client's documents session
// (here with the hub's Leave, as it does when a client does not read its
// answers) while the room stays connected, Open returns ErrCutOff instead
// of waiting for a data channel that will not come back.
func TestDocsOpenCutOff(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := join(t, ctx, srv, "alice", "cut", sdk.Options{})
	info, err := a.Docs().Create(ctx, "t", "text")
	if err != nil {
		t.Fatal(err)
	}
	srv.DocumentHub().Leave(a.Self().ID)
	done := make(chan error, 1)
	go func() {
		_, err := a.Docs().Open(ctx, info.ID)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, sdk.ErrCutOff) {
			t.Fatalf("Open after the cut-off: %v, want ErrCutOff", err)
		}
		t.Logf("Open: %v", err)
	case <-ctx.Done():
		t.Fatal("Open still waiting after the cut-off")
	}
	if _, err := a.Docs().List(ctx); !errors.Is(err, sdk.ErrCutOff) {
		t.Fatalf("List after the cut-off: %v, want ErrCutOff", err)
	}
}
