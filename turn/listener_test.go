package turn

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// A stream connection that sends nothing is cut at the first-byte
// deadline; once it has spoken, only the (longer) idle timeout applies.
func TestStreamDeadlines(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := newTrackingListener(ln, nil)
	tl.firstByte, tl.idle = 100*time.Millisecond, 300*time.Millisecond
	defer tl.Close()

	accept := func() (client, server net.Conn) {
		t.Helper()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.Close() })
		server, err = tl.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = server.Close() })
		return client, server
	}

	// Silent client: the first read times out near the first-byte deadline,
	// not at the idle one.
	_, server := accept()
	start := time.Now()
	_, err = server.Read(make([]byte, 16))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent client: read error %v, want deadline exceeded", err)
	}
	if waited := time.Since(start); waited > 250*time.Millisecond {
		t.Fatalf("silent client held for %v", waited)
	}

	// A client that speaks gets the idle timeout for later reads.
	client, server := accept()
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Read(make([]byte, 16)); err != nil {
		t.Fatalf("first read: %v", err)
	}
	time.Sleep(150 * time.Millisecond) // past the first-byte deadline
	if _, err := client.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Read(make([]byte, 16)); err != nil {
		t.Fatalf("read after first-byte deadline on a live connection: %v", err)
	}
}
