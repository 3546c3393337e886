package main

import (
	"syscall"
	"time"
)

// cpuTime is this process's user+system CPU time (getrusage: honest on
// this machine, unlike sampling profilers).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
