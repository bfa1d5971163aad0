//go:build !unix

package server_test

import (
	"testing"
	"time"
)

// processCPU is 0 where getrusage is missing: the benchmark's CPU metric is then 0.
func processCPU(testing.TB) time.Duration { return 0 }
