//go:build unix

package server_test

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time this process has used, in user and kernel mode.
func processCPU(tb testing.TB) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
