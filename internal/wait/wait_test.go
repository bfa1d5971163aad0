package wait_test

import (
	"context"
	"testing"
	"time"

	"github.com/mixvoip/consentd/internal/wait"
)

func TestDeadline(t *testing.T) {
	d, ok := wait.Deadline(t)
	binary, hasDeadline := t.Deadline()
	if ok != hasDeadline {
		t.Fatalf("Deadline ok = %v, want %v: as the test's", ok, hasDeadline)
	}
	if ok && !(d.Before(binary) && d.After(time.Now())) {
		t.Errorf("Deadline = %v, want before the test binary's %v and after now", d, binary)
	}
	if _, ok := wait.Deadline(&testing.B{}); ok {
		t.Error("a benchmark has no deadline to tell")
	}
}

func TestContext(t *testing.T) {
	before, want := wait.Deadline(t)
	ctx, cancel := wait.Context(t, context.Background())
	defer cancel()
	after, _ := wait.Deadline(t)
	// The grace shrinks with the time left: the deadline moves on a little.
	if d, ok := ctx.Deadline(); ok != want || ok && (d.Before(before) || d.After(after)) {
		t.Errorf("context deadline %v, %v; want %v between %v and %v", d, ok, want, before, after)
	}
}

func TestMustUntil(t *testing.T) {
	polls := 0
	wait.MustUntil(t, "the third poll", func() (bool, string) {
		polls++
		return polls == 3, ""
	})
	if polls != 3 {
		t.Errorf("polled %d times, want until the condition held", polls)
	}
}
