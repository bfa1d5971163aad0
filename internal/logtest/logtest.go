// Package logtest is what tests read a log with while a server writes it.
package logtest

import (
	"strings"
	"sync"
)

// Buffer is a log's output, which a logger writes to while a test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
