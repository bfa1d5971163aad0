// Package groupcommit is the write queue of a store: callers hand their writes to a
// bounded queue without ever blocking, and one writer goroutine takes whatever is
// queued and commits it as one batch, one transaction and one sync for all of them.
//
// It never waits on a timer for a batch to fill: bbolt's DB.Batch waits up to its
// MaxBatchDelay, so that with fewer callers than its MaxBatchSize every commit waits
// the whole delay (docs/BENCHMARKS.md has the numbers).
package groupcommit

import (
	"fmt"
	"runtime"
	"sync"

	consent "github.com/mixvoip/consentd"
)

// Defaults of a store's write queue.
const (
	// DefaultQueueSize is how many writes may wait for the writer before Enqueue
	// refuses more: a few batches' worth, enough to ride out a slow sync, short of
	// keeping callers waiting longer than their clients would.
	DefaultQueueSize = 4096

	// DefaultMaxBatch is the most writes committed in one transaction.
	DefaultMaxBatch = 1000
)

// Writer is a queue of writes of type R and the goroutine that commits them.
type Writer[R any] struct {
	maxBatch int
	commit   func(batch []R)

	// mu orders sends on queue against Close closing it.
	mu     sync.RWMutex
	closed bool
	queue  chan R
	// inflight counts the writes queued whose callers have not called Done: after
	// its commit, a caller may still read (its proof, say), and Close waits for that.
	inflight sync.WaitGroup
	done     chan struct{}
}

// Start starts the writer of a queue of queueSize writes, which commits at most
// maxBatch of them at a time with commit. commit must answer every write of its
// batch (through a channel each write carries, say); it is called from the writer
// goroutine only, one batch at a time.
func Start[R any](queueSize, maxBatch int, commit func(batch []R)) *Writer[R] {
	w := &Writer[R]{maxBatch: maxBatch, commit: commit, queue: make(chan R, queueSize), done: make(chan struct{})}
	go w.write()
	return w
}

// Enqueue hands r to the writer without blocking: a caller that cannot be served soon
// is better answered "busy" than left hanging until its client gives up. The error
// wraps consent.ErrUnavailable when the queue is full or closed. After a nil error the
// caller must call Done once it has its answer.
func (w *Writer[R]) Enqueue(r R) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return fmt.Errorf("store closed: %w", consent.ErrUnavailable)
	}
	select {
	case w.queue <- r:
		w.inflight.Add(1)
		return nil
	default:
		return fmt.Errorf("write queue full (%d records): %w", cap(w.queue), consent.ErrUnavailable)
	}
}

// Done tells the writer that the caller of one Enqueue is done with its answer.
func (w *Writer[R]) Done() { w.inflight.Done() }

// Closed reports whether Close was called.
func (w *Writer[R]) Closed() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.closed
}

// Close stops taking writes, commits those already queued, and waits for their
// callers to be done with their answers.
func (w *Writer[R]) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
	w.inflight.Wait()
}

// Depth returns how many writes wait for the writer now.
func (w *Writer[R]) Depth() int { return len(w.queue) }

// Capacity returns how many writes may wait before Enqueue refuses more.
func (w *Writer[R]) Capacity() int { return cap(w.queue) }

// write is the writer goroutine; it returns once Close has closed the queue and
// everything queued before is committed.
func (w *Writer[R]) write() {
	defer close(w.done)
	batch := make([]R, 0, w.maxBatch)
	for r := range w.queue {
		w.gather()
		batch = append(batch[:0], r)
		batch = w.takeQueued(batch)
		w.commit(batch)
		clear(batch) // let the answered writes be collected while the queue is idle
	}
}

// gather lets the writes already under way join the next batch, when others are
// queued besides the one the writer holds: it yields the processor for as long as
// that makes the queue grow. On a busy machine the callers that would join are
// runnable but not yet run; a commit started at once holds fewer writes, pays its
// syncs and signature for them, and competes with those callers for the processor.
// With nothing else runnable, Gosched returns at once: a lone caller waits for
// nothing.
func (w *Writer[R]) gather() {
	for queued := len(w.queue); queued > 0 && queued < w.maxBatch; {
		runtime.Gosched()
		now := len(w.queue)
		if now <= queued {
			return
		}
		queued = now
	}
}

// takeQueued appends to batch the writes already queued, up to the batch limit.
func (w *Writer[R]) takeQueued(batch []R) []R {
	for len(batch) < w.maxBatch {
		select {
		case r, ok := <-w.queue:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}
