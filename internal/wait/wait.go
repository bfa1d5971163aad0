// Package wait is how tests wait: on an event where there is one, else by polling a
// condition, and in both cases for as long as the test may run (go test -timeout),
// never for a fixed time that a slow or busy machine can overrun.
package wait

import (
	"context"
	"testing"
	"time"
)

// Deadline returns when a test should give up waiting: a little before the deadline
// of the test binary, which leaves the test the time to fail saying what it waited
// for and to clean up, rather than be killed in the middle. ok is false if the test
// has no deadline (-timeout 0) or cannot tell it (benchmarks, fuzz targets).
func Deadline(tb testing.TB) (deadline time.Time, ok bool) {
	t, ok := tb.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return time.Time{}, false
	}
	d, ok := t.Deadline()
	if !ok {
		return time.Time{}, false
	}
	// The grace cmd/go leaves its script tests: a twentieth of the time left, and
	// never less than 100 ms.
	grace := max(time.Until(d)/20, 100*time.Millisecond)
	return d.Add(-grace), true
}

// Timeout returns a channel that receives at Deadline, for a select that waits on an
// event. It never receives if the test has no deadline.
func Timeout(tb testing.TB) <-chan time.Time {
	d, ok := Deadline(tb)
	if !ok {
		return nil
	}
	return time.After(time.Until(d))
}

// Context returns a copy of parent that ends at Deadline, for what a test waits on
// through a context.
func Context(tb testing.TB, parent context.Context) (context.Context, context.CancelFunc) {
	if d, ok := Deadline(tb); ok {
		return context.WithDeadline(parent, d)
	}
	return context.WithCancel(parent)
}

// MustUntil polls cond until it holds, failing tb with what and cond's last detail at
// Deadline. Wait on an event instead wherever there is one.
func MustUntil(tb testing.TB, what string, cond func() (ok bool, detail string)) {
	tb.Helper()
	timeout := Timeout(tb)
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		ok, detail := cond()
		if ok {
			return
		}
		select {
		case <-poll.C:
		case <-timeout:
			tb.Fatalf("gave up waiting until %s, as the test's time runs out (last: %s)", what, detail)
		}
	}
}
