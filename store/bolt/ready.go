package bolt

import (
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

// readyEvery is how long one probe of Ready is trusted: a readiness probe may come
// from anywhere, and each probe costs a commit.
const readyEvery = 5 * time.Second

// readyProbe remembers the last probe of Ready.
type readyProbe struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

// Ready returns an error while the store takes no writes: it is closed, a transaction
// of appends failed, or an empty transaction cannot commit (a read-only or failing
// disk). It commits at most once every few seconds, however often it is asked.
func (s *Store) Ready() error {
	if s.writer.Closed() {
		return fmt.Errorf("bolt: store closed: %w", consent.ErrUnavailable)
	}
	if err := s.failure(); err != nil {
		return fmt.Errorf("bolt: %w", err)
	}
	p := &s.ready
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < readyEvery {
		return p.err
	}
	p.at, p.err = time.Now(), nil
	if err := s.update(func(*bolt.Tx) error { return nil }); err != nil {
		p.err = fmt.Errorf("bolt: a commit fails: %w", err)
	}
	return p.err
}
