package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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
	since   map[*request]time.Time // when each began to wait
	arrived chan struct{}          // a request came: the poller starts polling
	// answered, if set, hears how long each request waited for its answer.
	answered func(time.Duration)
}

func newWaiters(answered func(time.Duration)) *waiters {
	return &waiters{byID: map[uuid.UUID]*request{}, since: map[*request]time.Time{}, arrived: make(chan struct{}, 1), answered: answered}
}

// add makes reqs wait and returns them, but those whose id waits already, which it
// answers as duplicates, and those whose caller gave up already.
func (w *waiters) add(reqs []*request) []*request {
	added := reqs[:0:0]
	now := time.Now()
	w.mu.Lock()
	for _, req := range reqs {
		if req.gaveUp.Load() {
			continue
		}
		if w.byID[req.recordID] != nil {
			req.done <- appended{err: errAlreadyStored(req.recordID)}
			continue
		}
		w.byID[req.recordID] = req
		w.since[req] = now
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
	if req == nil {
		return nil
	}
	if w.answered != nil {
		w.answered(time.Since(w.since[req]))
	}
	delete(w.byID, id)
	delete(w.since, req)
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
		delete(w.since, req)
	}
}

// drop stops waiting for req, whose caller gave up, whether it waits yet or not.
func (w *waiters) drop(req *request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	req.gaveUp.Store(true)
	if w.byID[req.recordID] == req {
		delete(w.byID, req.recordID)
		delete(w.since, req)
	}
}

// ids returns the record ids that have waited at least age.
func (w *waiters) ids(age time.Duration) []uuid.UUID {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]uuid.UUID, 0, len(w.byID))
	now := time.Now()
	for id, req := range w.byID {
		if now.Sub(w.since[req]) >= age {
			out = append(out, id)
		}
	}
	return out
}

// waiting reports whether any request waits.
func (w *waiters) waiting() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.byID) > 0
}

// poll answers, until ctx is done, the requests of this instance that another
// instance's sequencer integrated, or this one's if its answer was lost: while
// requests wait, it reads the log's head, from every millisecond to every few while
// it does not move, and looks the requests up in the log when it moved. Polling,
// not LISTEN/NOTIFY: a notification is lost across a reconnection, and a poll is
// not.
//
// While this instance leads, its sequencer answers its requests as it integrates
// them: the poller then looks up only those that waited longer than a few polls.
// So it does for every instance, whatever the head, now and then: a record whose id
// was in the log already moves no head.
func (s *Store) poll(ctx context.Context) {
	interval := shortestPoll
	var polled *consent.Checkpoint // the head when the requests were last looked up
	lookedUp := time.Now()
	for ctx.Err() == nil {
		if !s.waiting.waiting() {
			interval = shortestPoll
			select {
			case <-ctx.Done():
			case <-s.waiting.arrived:
			}
			continue
		}
		leading, due := s.Leading(), time.Since(lookedUp) >= overdue
		if leading && !due {
			sleep(ctx, longestPoll, nil)
			continue
		}
		head, err := s.readHead(ctx)
		switch {
		case err != nil:
			interval = longestPoll
		case head != polled || due:
			age := time.Duration(0)
			if leading {
				age = overdue
			}
			if err := s.answerIntegrated(ctx, s.waiting.ids(age), head); err != nil {
				interval = longestPoll
				break
			}
			polled, lookedUp, interval = head, time.Now(), shortestPoll
		default:
			interval = min(2*interval, longestPoll)
		}
		sleep(ctx, interval, nil)
	}
}

// overdue is how long a request waits before the poller looks it up whatever the
// head: many times what an integration takes.
const overdue = 4 * longestPoll

// answerIntegrated answers the requests of ids whose leaves the log holds under
// head.
func (s *Store) answerIntegrated(ctx context.Context, ids []uuid.UUID, head *consent.Checkpoint) error {
	leaves, err := s.storedLeaves(ctx, ids)
	if err != nil {
		return err
	}
	for id, leaf := range leaves {
		// A leaf integrated after head was read waits for the next poll.
		if leaf.index < head.Size {
			s.waiting.integrated(id, leaf.bytes, appended{index: leaf.index, head: head})
		}
	}
	return nil
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
	head, _, err := s.readHeadAt(ctx)
	return head, err
}

// readHeadAt is readHead that also returns when the head was signed (zero if
// before the database kept it). The head is the same pointer while it does not
// change, which the poller compares.
func (s *Store) readHeadAt(ctx context.Context) (*consent.Checkpoint, time.Time, error) {
	if err := s.failure(); err != nil {
		return nil, time.Time{}, err
	}
	seen := s.head.Load()
	var signed []byte
	var signedAt *time.Time
	err := s.pool.QueryRow(ctx, "SELECT checkpoint, signed_at FROM log_head WHERE id = 1").Scan(&signed, &signedAt)
	if signedAt == nil {
		signedAt = &time.Time{}
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = errors.New("the database holds no log")
	case err != nil:
	case bytes.Equal(signed, seen.Signed):
		return seen, *signedAt, nil
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	head := &consent.Checkpoint{Origin: s.origin}
	if signed != nil {
		err := s.verified(ctx, func(verifier *translog.Verifier) (err error) {
			head, err = verifier.Open(signed)
			return err
		})
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("the log's head in the database: %w", err)
		}
	}
	if err := extends(head, seen, translog.Hashes(ctx, s)); err != nil {
		if errors.Is(err, errForked) {
			s.fail(err) // not for a read that failed: the next one may not
		}
		return nil, time.Time{}, err
	}
	s.sawHead(head)
	return head, *signedAt, nil
}
