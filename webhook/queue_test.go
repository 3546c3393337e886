package webhook

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// A queue for an endpoint that is down keeps at most QueueLen events,
// dropping (and counting) the oldest, and Enqueue never waits.
func TestQueueIsBounded(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	n := New(Config{URLs: []string{down.URL}, Secret: "s", QueueLen: 5, MinBackoff: time.Hour})
	defer n.Close()
	for i := range 1000 {
		n.Enqueue(strconv.Itoa(i), []byte(`{}`))
	}
	st := n.Stats()
	if st.Queued != 5 || st.Dropped != 995 || st.Delivered != 0 {
		t.Errorf("stats %+v, want 5 queued and 995 dropped", st)
	}
}
