package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/huddle-rtc/huddle/node"
)

// childStats is what a bench server child reports when asked: its
// allocation count, so that the parent can compute allocations per packet.
type childStats struct {
	Mallocs uint64 `json:"mallocs"`
}

// benchServer is the child process of `huddle bench sfu`: a dev-mode server
// on loopback (the real media plane, or the naive baseline), measured from
// outside. It prints its URL, answers "stats" lines on stdin with a JSON
// line on stdout, and stops when stdin closes.
func benchServer(args []string) error {
	f := newEnvFlags("bench sfu-server")
	baseline := f.Bool("baseline", false, "forward with the naive Pion forwarder")
	noGSO := f.Bool("no-gso", false, "one send per packet even where UDP GSO works")
	schedNormal := f.Bool("sched-normal", false, "return to normal scheduling first (the parent's bots run under SCHED_IDLE, which children inherit)")
	if err := f.parse(args); err != nil {
		return err
	}
	if *schedNormal {
		if err := schedNormalSelf(); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "huddle-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := node.New(node.Config{
		HTTPAddr:      "127.0.0.1:0",
		MediaUDPAddr:  "127.0.0.1:0",
		MediaTCPAddr:  "off",
		DataDir:       dir,
		Logger:        quiet,
		MediaBaseline: *baseline,
		MediaNoGSO:    *noGSO,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(context.Background()); err != nil {
		return err
	}
	defer srv.Close()
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, srv.URL())
	out.Flush()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "stats" {
			continue
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b, _ := json.Marshal(childStats{Mallocs: ms.Mallocs})
		out.Write(append(b, '\n'))
		out.Flush()
	}
	return nil
}
