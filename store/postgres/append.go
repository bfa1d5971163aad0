package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// row is a record as the pending and records tables hold it, with its leaf.
type row struct {
	recordID, consentID                 uuid.UUID
	site, action, fingerprint, language string
	recordedAt                          time.Time
	decision, identifying, leaf         []byte
}

// request is one Append, prepared by its caller (encoding and hashing run in
// parallel), then written as pending by the writer, and answered once the sequencer
// integrated it into the log.
type request struct {
	row
	record   *consent.Record
	snapshot string
	done     chan appended // buffered: no one waits for a caller that gave up
	gaveUp   atomic.Bool   // its caller no longer waits: nor does the request
}

// appended is the answer to a request: where its leaf is and a tree that holds it,
// the batch the local sequencer committed it in (which proves it without reading the
// database) or a checkpoint read since.
type appended struct {
	index int64
	batch *translog.Batch
	head  *consent.Checkpoint
	err   error
}

// Append writes r durably as pending, waits until the sequencer (this instance or
// another one on the database) integrated it into the log under a signed
// checkpoint, and returns its receipt. A record not integrated within the store's
// integration timeout is refused with consent.ErrUnavailable: it may still be
// integrated later, but it was not acknowledged. See consent.RecordStore.
func (s *Store) Append(ctx context.Context, r *consent.Record) (*consent.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("postgres: append: %w", err)
	}
	req, err := s.newRequest(r)
	if err != nil {
		return nil, fmt.Errorf("postgres: append: %w", err)
	}
	if err := s.failure(); err != nil {
		return nil, fmt.Errorf("postgres: append: %w", err)
	}
	if err := s.writer.Enqueue(req); err != nil {
		return nil, fmt.Errorf("postgres: append: %w", err)
	}
	defer s.writer.Done()
	timeout := time.NewTimer(s.integrationTimeout)
	defer timeout.Stop()
	var a appended
	select {
	case a = <-req.done:
	case <-ctx.Done():
		s.waiting.drop(req)
		return nil, fmt.Errorf("postgres: append: %w", ctx.Err())
	case <-timeout.C:
		s.waiting.drop(req)
		return nil, fmt.Errorf("postgres: append: record %s is written but not yet in the log after %s: no sequencer integrates (see the lease in sequencer_lease): %w", r.ID, s.integrationTimeout, consent.ErrUnavailable)
	}
	if a.err != nil {
		return nil, a.err
	}
	var p *translog.Proof
	if a.batch != nil {
		p, err = a.batch.Prove(a.index, translog.Hashes(ctx, s))
	} else {
		p, err = translog.Prove(translog.Hashes(ctx, s), a.index, a.head)
	}
	var receipt *consent.Receipt
	if err == nil {
		receipt, err = translog.NewReceipt(p, req.decision, req.leaf, req.snapshot)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: append: the receipt of record %s, which is stored: %w", r.ID, err)
	}
	return receipt, nil
}

// newRequest prepares the append of r: its parts, its leaf and the leaf's hash.
func (s *Store) newRequest(r *consent.Record) (*request, error) {
	if r == nil {
		return nil, consent.Errorf(consent.EInvalid, "no record")
	}
	recordID, err := uuid.Parse(r.ID)
	if err != nil {
		return nil, consent.Errorf(consent.EInvalid, "record id %q is not a UUID", r.ID)
	}
	consentID, err := uuid.Parse(r.ConsentID)
	if err != nil {
		return nil, consent.Errorf(consent.EInvalid, "consent id %q is not a UUID", r.ConsentID)
	}
	if len(r.Site) == 0 || len(r.Site) > 255 {
		return nil, consent.Errorf(consent.EInvalid, "site %q is not 1 to 255 bytes long", r.Site)
	}
	req := &request{record: r, done: make(chan appended, 1), row: row{
		recordID: recordID, consentID: consentID, site: r.Site, action: string(r.Action),
		fingerprint: r.Fingerprint, language: r.Language, recordedAt: r.RecordedAt,
	}}
	if req.decision, err = translog.DecisionPart(r); err != nil {
		return nil, err
	}
	if req.identifying, err = translog.IdentifyingPart(r); err != nil {
		return nil, err
	}
	var digest [32]byte
	snap, err := s.snapshots.Lookup(r.Site, r.Fingerprint, s.snapshotBytes)
	if err != nil {
		// A leaf names its snapshot for good: one that could not be read now must
		// not become one never shown.
		return nil, fmt.Errorf("the snapshot of %s %s: %v: %w", r.Site, r.Fingerprint, err, consent.ErrUnavailable)
	}
	if snap != nil {
		digest, req.snapshot = snap.Digest, snap.Text
	}
	leaf, err := translog.NewLeaf(r, digest, req.decision, req.identifying)
	if err != nil {
		return nil, err
	}
	if req.leaf, err = leaf.MarshalBinary(); err != nil {
		return nil, err
	}
	return req, nil
}

// commitTimeout bounds one try of a commit: a database that stopped answering, its
// connection still open, must not hold the writer, and Close, for as long as TCP
// takes to notice.
const commitTimeout = 30 * time.Second

// commitAttempts bounds how often a batch is tried when the database fails in a way
// that another try may not (a lost connection, a serialization failure).
const commitAttempts = 5

// commit hands the requests of batch to the waiters, which the sequencer or the
// poller answer, and writes them: straight into the log while this instance holds
// the lease (one commit, as with a single instance), else as pending in one
// transaction, for the sequencer. A record id already pending or in the log is
// refused, as is one whose id another request of this instance waits for.
//
// A batch whose commit failed in a way worth another try is tried again as pending:
// the insert skips what is pending or in the log already, so that a commit whose
// outcome was unknown stores each record once; its requests then wait, and the leaf
// integrated under their id tells them whether it was theirs.
func (s *Store) commit(batch []*request) {
	fresh := s.waiting.add(batch)
	unknown := false // whether a failed commit may have stored the batch
	if s.sequencer.leading.Load() {
		_, err := s.integrate(context.Background(), fresh)
		if err == nil {
			return
		}
		unknown = true
	}
	var inserted map[uuid.UUID]bool
	var err error
	for attempt := range commitAttempts {
		if err = s.failure(); err != nil {
			break
		}
		if attempt > 0 {
			time.Sleep(backoff(attempt)) // the database's recovery, which nothing announces
		}
		if inserted, err = s.insertPending(fresh); err == nil {
			break
		}
		unknown = true
		if errors.Is(err, errMoved) {
			s.fail(err)
		}
		if !worthRetrying(err) {
			break
		}
	}
	for _, req := range fresh {
		switch {
		case err != nil:
			s.waiting.answer(req.recordID, appended{err: fmt.Errorf("postgres: append: %w", err)})
		case !inserted[req.recordID] && !unknown:
			s.waiting.answer(req.recordID, appended{err: errAlreadyStored(req.recordID)})
		}
	}
	if err == nil {
		s.sequencer.wakeUp()
	}
}

// errAlreadyStored refuses a record whose id is stored already.
func errAlreadyStored(id uuid.UUID) error {
	return fmt.Errorf("postgres: append: %w", consent.Errorf(consent.EInvalid, "record id %s is already stored", id))
}

// insertPending writes reqs as pending records in one transaction, but those whose
// id is pending or in the log already, and returns the ids it wrote.
func (s *Store) insertPending(reqs []*request) (map[uuid.UUID]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	c := newColumns(len(reqs))
	for _, req := range reqs {
		c.add(&req.row)
	}
	rows, err := s.pool.Query(ctx, `INSERT INTO pending (record_id, consent_id, site, recorded_at, action, fingerprint, language, decision, identifying, leaf)
		SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::bytea[], $10::bytea[]) AS u (id)
		WHERE NOT EXISTS (SELECT 1 FROM leaves l WHERE l.record_id = u.id)
		ON CONFLICT (record_id) DO NOTHING RETURNING record_id`,
		c.ids, c.consentIDs, c.sites, c.recordedAt, c.actions, c.fingerprints, c.languages, c.decisions, c.identifying, c.leaves)
	if err != nil {
		return nil, err
	}
	inserted := make(map[uuid.UUID]bool, len(reqs))
	var id uuid.UUID
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
		inserted[id] = true
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "CD002" {
		return nil, errMoved
	}
	return inserted, err
}

// columns are rows as the arrays of their columns, which one statement inserts with
// unnest.
type columns struct {
	ids, consentIDs                         []uuid.UUID
	sites, actions, fingerprints, languages []string
	recordedAt                              []time.Time
	decisions, identifying, leaves          [][]byte
}

func newColumns(n int) *columns {
	return &columns{
		ids: make([]uuid.UUID, 0, n), consentIDs: make([]uuid.UUID, 0, n),
		sites: make([]string, 0, n), actions: make([]string, 0, n), fingerprints: make([]string, 0, n), languages: make([]string, 0, n),
		recordedAt: make([]time.Time, 0, n),
		decisions:  make([][]byte, 0, n), identifying: make([][]byte, 0, n), leaves: make([][]byte, 0, n),
	}
}

func (c *columns) add(r *row) {
	c.ids, c.consentIDs = append(c.ids, r.recordID), append(c.consentIDs, r.consentID)
	c.sites, c.actions = append(c.sites, r.site), append(c.actions, r.action)
	c.fingerprints, c.languages = append(c.fingerprints, r.fingerprint), append(c.languages, r.language)
	c.recordedAt = append(c.recordedAt, r.recordedAt)
	c.decisions, c.identifying, c.leaves = append(c.decisions, r.decision), append(c.identifying, r.identifying), append(c.leaves, r.leaf)
}

// worthRetrying reports whether a commit that failed with err may succeed if tried
// again: the database answered with a serialization failure or a deadlock, or ended
// the connection (classes 08 and 57), or the connection failed without an answer,
// before or after the commit reached the database (the retry finds out which).
func worthRetrying(err error) bool {
	var pgErr *pgconn.PgError
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	switch {
	case errors.As(err, &pgErr):
		return pgErr.Code == "40001" || pgErr.Code == "40P01" || strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57")
	case errors.Is(err, errLostAnswer), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return errors.As(err, &netErr) || errors.As(err, &connectErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}

// backoff is how long to wait before the attempt-th try of a commit.
func backoff(attempt int) time.Duration {
	return min(50*time.Millisecond<<attempt, 2*time.Second)
}

// snapshotBytes reads a stored snapshot's bytes, nil if there is none.
func (s *Store) snapshotBytes(site, fingerprint string) ([]byte, error) {
	var value []byte
	err := s.pool.QueryRow(context.Background(), "SELECT snapshot FROM snapshots WHERE site = $1 AND fingerprint = $2", site, fingerprint).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return value, err
}
