package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// waiters are the requests of this instance written as pending and not answered yet,
// by record id. Whoever finds one integrated first, the local sequencer or the
// poller, answers it, once.
type waiters struct {
	mu      sync.Mutex
	byID    map[uuid.UUID]*request
	arrived chan struct{} // a request came: the poller starts polling
}

func newWaiters() *waiters {
	return &waiters{byID: map[uuid.UUID]*request{}, arrived: make(chan struct{}, 1)}
}

// add makes reqs wait and returns them, but those whose id waits already, which it
// answers as duplicates.
func (w *waiters) add(reqs []*request) []*request {
	added := reqs[:0:0]
	w.mu.Lock()
	for _, req := range reqs {
		if w.byID[req.recordID] != nil {
			req.done <- appended{err: errAlreadyStored(req.recordID)}
			continue
		}
		w.byID[req.recordID] = req
		added = append(added, req)
	}
	w.mu.Unlock()
	select {
	case w.arrived <- struct{}{}:
	default:
	}
	return added
}

// take removes the request waiting under id and returns it, nil if none waits.
func (w *waiters) take(id uuid.UUID) *request {
	w.mu.Lock()
	defer w.mu.Unlock()
	req := w.byID[id]
	delete(w.byID, id)
	return req
}

// answer answers the request waiting under id with a, if one waits.
func (w *waiters) answer(id uuid.UUID, a appended) {
	if req := w.take(id); req != nil {
		req.done <- a
	}
}

// integrated answers the request waiting under id, whose leaf the log holds as leaf:
// with a if that leaf is the request's, else with a refusal: another record with
// the same id was stored first.
func (w *waiters) integrated(id uuid.UUID, leaf []byte, a appended) {
	req := w.take(id)
	if req == nil {
		return
	}
	if !bytes.Equal(req.leaf, leaf) {
		a = appended{err: errAlreadyStored(id)}
	}
	req.done <- a
}

// refuseAll answers every request waiting with err.
func (w *waiters) refuseAll(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, req := range w.byID {
		req.done <- appended{err: err}
		delete(w.byID, id)
	}
}

// drop stops waiting for req, whose caller gave up.
func (w *waiters) drop(req *request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byID[req.recordID] == req {
		delete(w.byID, req.recordID)
	}
}

// ids returns the record ids waiting.
func (w *waiters) ids() []uuid.UUID {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]uuid.UUID, 0, len(w.byID))
	for id := range w.byID {
		out = append(out, id)
	}
	return out
}

// poll answers, until ctx is done, the requests of this instance that another
// instance's sequencer integrated (or this one's, if its answer was lost): while
// requests wait, it looks their ids up in the log, from every millisecond to every
// few while nothing is found. Polling, not LISTEN/NOTIFY: a notification is lost
// across a reconnection, and a poll is not.
func (s *Store) poll(ctx context.Context) {
	interval := shortestPoll
	for ctx.Err() == nil {
		ids := s.waiting.ids()
		if len(ids) == 0 {
			interval = shortestPoll
			select {
			case <-ctx.Done():
			case <-s.waiting.arrived:
			}
			continue
		}
		found, err := s.pollOnce(ctx, ids)
		switch {
		case err != nil:
			interval = longestPoll
		case found > 0:
			interval = shortestPoll
		default:
			interval = min(2*interval, longestPoll)
		}
		sleep(ctx, interval, nil)
	}
}

// pollOnce answers the requests of ids whose leaves the log holds, and returns how
// many it found.
func (s *Store) pollOnce(ctx context.Context, ids []uuid.UUID) (int, error) {
	leaves, err := s.storedLeaves(ctx, ids)
	if err != nil || len(leaves) == 0 {
		return 0, err
	}
	// Read after the leaves, so that it signs every one of them: a leaf and the
	// checkpoint over it commit together.
	head, err := s.readHead(ctx)
	if err != nil {
		return 0, err
	}
	for id, leaf := range leaves {
		if leaf.index < head.Size {
			s.waiting.integrated(id, leaf.bytes, appended{index: leaf.index, head: head})
		}
	}
	return len(leaves), nil
}

// sawHead makes cp the newest checkpoint this instance knows, unless it knows a
// bigger one.
func (s *Store) sawHead(cp *consent.Checkpoint) {
	for {
		seen := s.head.Load()
		if seen != nil && seen.Size >= cp.Size {
			return
		}
		if s.head.CompareAndSwap(seen, cp) {
			return
		}
	}
}

// readHead reads the log's newest checkpoint from the database. It must extend every
// checkpoint this instance saw before the read, which visitors' receipts may hold
// already: a database that lost integrations (a failover to a replica behind, a
// restore) stops the store taking appends, as extending it would fork the log.
func (s *Store) readHead(ctx context.Context) (*consent.Checkpoint, error) {
	if err := s.failure(); err != nil {
		return nil, err
	}
	seen := s.head.Load()
	var signed []byte
	err := s.pool.QueryRow(ctx, "SELECT checkpoint FROM log_head WHERE id = 1").Scan(&signed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = errors.New("the database holds no log")
	case err != nil:
	case bytes.Equal(signed, seen.Signed):
		return seen, nil
	}
	if err != nil {
		return nil, err
	}
	head := &consent.Checkpoint{Origin: s.origin}
	if signed != nil {
		verifier, err := s.keys.LogVerifier(s.origin)
		if err != nil {
			return nil, err
		}
		if head, err = verifier.Open(signed); err != nil {
			return nil, fmt.Errorf("the log's head in the database: %w", err)
		}
	}
	if err := extends(head, seen, translog.Hashes(ctx, s)); err != nil {
		s.fail(err)
		return nil, err
	}
	s.sawHead(head)
	return head, nil
}
