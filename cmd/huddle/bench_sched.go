package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Why the bots can run under SCHED_IDLE (`bench sfu --bots idle`): the
// bots share the machine with the server under test, and on two cores a
// server thread that wakes up to forward a frame often finds both cores
// running bots; the time it waits is the bench's, not the server's. Under
// SCHED_IDLE a bot thread runs only when no normal thread wants the core,
// and a waking normal thread takes the core from it at once. Nice 19
// still gives the bots a share (about 1.5 % against a nice-0 thread, and
// EEVDF may let a running bot finish its slice); pinning bots to one core
// and the server to the other halves the server's machine. With idle bots
// the server's own delay is measured as on a machine of its own; the
// bots' own delays (they wait for the server now) land in the bot-to-bot
// latency, which the bench prints beside it.
//
// Scheduling policy is per thread and inherited by new threads and child
// processes: the bench moves every thread it has to SCHED_IDLE (threads
// the Go runtime starts later inherit it), and each server child moves
// its own threads back to SCHED_OTHER first thing, which needs
// CAP_SYS_NICE.

// schedIdleSelf moves every thread of this process to SCHED_IDLE.
func schedIdleSelf() error {
	return schedAll(&unix.SchedAttr{Policy: unix.SCHED_IDLE})
}

// schedNormalSelf moves every thread of this process back to SCHED_OTHER
// at nice 0.
func schedNormalSelf() error {
	if err := schedAll(&unix.SchedAttr{Policy: unix.SCHED_NORMAL}); err != nil {
		return fmt.Errorf("bench server: back to normal scheduling (the bots' SCHED_IDLE is inherited; leaving it needs root): %w", err)
	}
	return nil
}

// schedAll sets attr on every thread, again until a pass finds no thread
// it has not set (the runtime may start one meanwhile, from a thread not
// yet set).
func schedAll(attr *unix.SchedAttr) error {
	done := map[int]bool{}
	for {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			a := *attr
			a.Size = unix.SizeofSchedAttr
			if err := unix.SchedSetAttr(tid, &a, 0); err != nil && err != unix.ESRCH {
				return fmt.Errorf("sched_setattr(%d): %w", tid, err)
			}
			done[tid] = true
			fresh++
		}
		if fresh == 0 {
			return nil
		}
	}
}
