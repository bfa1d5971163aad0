package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// DefaultLease is how long the sequencer's lease lasts unless renewed: how long the
// records written on every instance wait when the sequencer's instance dies, before
// another one takes over.
const DefaultLease = 3 * time.Second

// sequencer is the state of the one goroutine of an instance that takes the lease
// when it is free and, while it holds it, integrates pending records into the log.
type sequencer struct {
	holder string        // this instance, as the lease names it
	lease  time.Duration // how long a lease taken or renewed lasts
	batch  int           // the most records one integration takes

	leading atomic.Bool

	// mu orders the integrations of the sequencer goroutine and of the writer, and
	// guards what follows.
	mu    sync.Mutex
	epoch int64 // the fencing epoch of the lease held, 0 for none
	// The log's head and the hashes of its tree's right edge, read when the lease is
	// taken and again after a failed integration (stale), then moved by each
	// integration.
	log   *translog.Log
	edge  map[int64]tlog.Hash
	stale bool

	wake chan struct{} // records were written here: integrate now
}

func (q *sequencer) wakeUp() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Leading reports whether this instance holds the sequencer's lease now: the one
// that integrates records, and that runs what only one instance may run at a time
// (the retention purge).
func (s *Store) Leading() bool { return s.sequencer.leading.Load() }

// Polling intervals of the sequencer for pending records written by other instances,
// and of the poller for records integrated by another instance: from the shortest,
// doubled each time nothing was found, up to the longest.
const (
	shortestPoll = time.Millisecond
	longestPoll  = 25 * time.Millisecond
)

// sequence runs the sequencer, once Open tried to take the lease, until ctx is done,
// then gives up the lease so that another instance takes over at once.
func (s *Store) sequence(ctx context.Context) {
	q := &s.sequencer
	defer s.releaseLease()
	renewAt := time.Now().Add(q.lease / 3)
	poll := shortestPoll
	for ctx.Err() == nil {
		if !time.Now().Before(renewAt) {
			s.takeLease(ctx)
			renewAt = time.Now().Add(q.lease / 3)
		}
		if !q.leading.Load() {
			sleep(ctx, time.Until(renewAt), nil)
			continue
		}
		n, err := s.integrate(ctx, nil)
		switch {
		case err != nil && !q.leading.Load():
			renewAt = time.Now() // another sequencer took over: ask for the lease again
		case err != nil:
			sleep(ctx, backoff(1), nil)
		case n > 0:
			poll = shortestPoll
		default:
			sleep(ctx, min(poll, time.Until(renewAt)), q.wake)
			poll = min(2*poll, longestPoll)
		}
	}
}

// sleep waits for d, ctx to be done, or wake.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-wake:
	}
}

// takeLease takes the sequencer's lease if it is free (expired by the database's
// clock), or renews it if this instance holds it. A new holder gets the next epoch.
func (s *Store) takeLease(ctx context.Context) {
	q := &s.sequencer
	ctx, cancel := context.WithTimeout(ctx, q.lease)
	defer cancel()
	var epoch int64
	err := s.pool.QueryRow(ctx, `INSERT INTO sequencer_lease AS l (id, holder, epoch, expires_at)
		VALUES (1, $1, 1, now() + $2 * interval '1 millisecond')
		ON CONFLICT (id) DO UPDATE SET
			epoch = CASE WHEN l.holder = $1 THEN l.epoch ELSE l.epoch + 1 END,
			holder = $1, expires_at = excluded.expires_at
		WHERE l.holder = $1 OR l.expires_at < now()
		RETURNING epoch`, q.holder, q.lease.Milliseconds()).Scan(&epoch)
	switch {
	case err == nil:
		q.mu.Lock()
		if epoch != q.epoch {
			q.epoch, q.stale = epoch, true
		}
		q.mu.Unlock()
		q.leading.Store(true)
	case errors.Is(err, pgx.ErrNoRows):
		q.leading.Store(false) // another instance holds it
	default:
		// Unknown: the lease may have been renewed. The integration's fencing
		// decides; a lease not renewed expires and another instance takes it.
	}
}

// releaseLease gives up the lease, if the row names this instance (which may have
// stepped down without another taking it), for another instance to take without
// waiting for it to expire.
func (s *Store) releaseLease() {
	q := &s.sequencer
	q.leading.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = s.pool.Exec(ctx, "UPDATE sequencer_lease SET expires_at = '-infinity' WHERE id = 1 AND holder = $1", q.holder)
}

// integrate integrates local, requests of this instance not written as pending,
// with the oldest pending records, up to the sequencer's batch, in one transaction,
// and answers the requests of this instance among them. It returns how many records
// it took from pending. The sequencer goroutine calls it with no local requests; the
// writer, while this instance leads, with its batch: the sequencer's own records
// then take one commit, not two.
//
// A record whose id is in the log already (written again after its insert's answer
// was lost, or a duplicate) is not logged again, and is dropped if pending; its
// writer finds the leaf under its id and compares it with its own. A
// local request whose id is pending is left to the writer of the pending record.
//
// The transaction is one pgx batch, which PostgreSQL runs in one implicit
// transaction, in one round trip. Its first statement, consentd_integrate, locks the
// log's head and fails it unless the head is the one this sequencer extends and the
// sequencer's epoch holds the lease, so that a stale sequencer never forks the log;
// its last, consentd_integrated, removes the pending records. A sequencer refused so
// steps down.
func (s *Store) integrate(ctx context.Context, local []*request) (int, error) {
	q := &s.sequencer
	q.mu.Lock()
	defer q.mu.Unlock()
	n, err := s.integrateLocked(ctx, local)
	switch {
	case errors.Is(err, errLeaseLost), errors.Is(err, errHeadMoved):
		q.leading.Store(false)
		q.stale = true
	case err != nil:
		q.stale = true // the database's head may be ahead of the one in memory
	}
	return n, err
}

func (s *Store) integrateLocked(ctx context.Context, local []*request) (int, error) {
	q := &s.sequencer
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	// After a failed integration, which may have stored them, the local requests'
	// ids are looked up in the log too; otherwise a duplicate fails the
	// transaction (errDuplicate), and the writer writes the batch as pending.
	wasStale := q.stale
	if q.stale {
		if err := s.openLog(ctx); err != nil {
			return 0, err
		}
		q.stale = false
	}
	pending, err := s.readPending(ctx)
	if err != nil {
		return 0, err
	}
	if len(pending)+len(local) == 0 {
		return 0, nil
	}
	start := time.Now()
	ids := make([]uuid.UUID, 0, len(pending)+len(local))
	isPending := make(map[uuid.UUID]bool, len(pending))
	for _, r := range pending {
		ids = append(ids, r.recordID)
		isPending[r.recordID] = true
	}
	rows := pending
	for _, req := range local {
		if !isPending[req.recordID] {
			ids = append(ids, req.recordID)
			rows = append(rows, &req.row)
		}
	}
	pendingIDs := ids[:len(pending)]
	lookUp := pendingIDs
	if wasStale {
		lookUp = ids
	}
	inLog, err := s.storedLeaves(ctx, lookUp)
	if err != nil {
		return 0, err
	}
	var fresh []*row
	for _, r := range rows {
		if _, ok := inLog[r.recordID]; !ok {
			fresh = append(fresh, r)
		}
	}
	head := q.log.Head()
	b := &pgx.Batch{}
	b.Queue("SELECT consentd_integrate($1, $2, $3)", head.Signed, q.epoch, pendingIDs)
	var logged *translog.Batch
	written := map[int64]tlog.Hash{}
	if len(fresh) > 0 {
		queueRecords(b, fresh, head.Size)
		counts := consent.Counts{}
		if err := countRows(counts, fresh); err != nil {
			return 0, err
		}
		if err := queueStats(b, counts); err != nil {
			return 0, err
		}
		signer, err := s.keys.LogSigner(s.origin)
		if err != nil {
			return 0, err
		}
		hashes := make([]tlog.Hash, len(fresh))
		for i, r := range fresh {
			hashes[i] = translog.LeafHash(r.leaf)
		}
		if logged, err = q.log.Append(&logTx{ctx: ctx, q: s.pool, edge: q.edge, written: written, batch: b}, hashes, signer); err != nil {
			return 0, err
		}
	}
	b.Queue("SELECT consentd_integrated($1)", pendingIDs)
	err = s.pool.SendBatch(ctx, b).Close()
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "CD001":
		return 0, errHeadMoved
	case errors.As(err, &pgErr) && pgErr.Code == "CD002":
		s.fail(errMoved)
		return 0, errMoved
	case errors.As(err, &pgErr) && pgErr.Code == "CD003":
		return 0, errLeaseLost
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return 0, errDuplicate // a local record another instance wrote as pending meanwhile
	case err == nil && s.loseAnswer.Load() != nil && (*s.loseAnswer.Load())():
		err = errLostAnswer
	}
	if err != nil {
		return 0, err
	}
	if logged != nil {
		q.log.Commit(logged)
		s.sawHead(logged.Checkpoint)
		if q.edge = nextEdge(logged.Checkpoint.Size, q.edge, written); q.edge == nil {
			q.edge = map[int64]tlog.Hash{} // read from the database as any hash
		}
		for i, r := range fresh {
			s.waiting.integrated(r.recordID, r.leaf, appended{index: head.Size + int64(i), batch: logged})
		}
	}
	if s.onCommit != nil {
		s.onCommit(len(fresh), time.Since(start))
	}
	return len(pending), nil
}

// readPending reads the oldest pending records, up to the sequencer's batch.
func (s *Store) readPending(ctx context.Context) ([]*row, error) {
	rows, err := s.pool.Query(ctx, `SELECT record_id, consent_id, site, recorded_at, action, fingerprint, language, decision, identifying, leaf
		FROM pending ORDER BY seq LIMIT $1`, s.sequencer.batch)
	if err != nil {
		return nil, err
	}
	var out []*row
	var r row
	_, err = pgx.ForEachRow(rows, []any{&r.recordID, &r.consentID, &r.site, &r.recordedAt, &r.action, &r.fingerprint, &r.language, &r.decision, &r.identifying, &r.leaf}, func() error {
		copied := r
		out = append(out, &copied)
		return nil
	})
	return out, err
}

// queueRecords queues the inserts of the leaves and records of rows, the first at
// index first.
func queueRecords(b *pgx.Batch, rows []*row, first int64) {
	c := newColumns(len(rows))
	indexes := make([]int64, len(rows))
	for i, r := range rows {
		c.add(r)
		indexes[i] = first + int64(i)
	}
	b.Queue(`INSERT INTO leaves (leaf_index, record_id, leaf) SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bytea[])`, indexes, c.ids, c.leaves)
	b.Queue(`INSERT INTO records (record_id, leaf_index, consent_id, site, recorded_at, action, fingerprint, language, decision, identifying)
		SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::bytea[])`,
		c.ids, indexes, c.consentIDs, c.sites, c.recordedAt, c.actions, c.fingerprints, c.languages, c.decisions, c.identifying)
}

// storedLeaf is a leaf in the database.
type storedLeaf struct {
	index int64
	bytes []byte
}

// storedLeaves returns the stored leaves of ids, by id.
func (s *Store) storedLeaves(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]storedLeaf, error) {
	out := map[uuid.UUID]storedLeaf{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT record_id, leaf_index, leaf FROM leaves WHERE record_id = ANY($1)", ids)
	if err != nil {
		return nil, err
	}
	var id uuid.UUID
	var leaf storedLeaf
	_, err = pgx.ForEachRow(rows, []any{&id, &leaf.index, &leaf.bytes}, func() error {
		out[id] = leaf // pgx copies what it scans into a []byte
		return nil
	})
	return out, err
}

var (
	// errHeadMoved is an integration refused because the log's head is not the one
	// the sequencer extends: another sequencer integrated since.
	errHeadMoved = errors.New("the log's head moved: another sequencer integrated records")

	// errLeaseLost is an integration refused because the sequencer's epoch no longer
	// holds the lease: another instance took it over.
	errLeaseLost = errors.New("the sequencer's lease was taken over by another instance")

	// errMoved is a store that consentd copy marked as moved to another while this
	// consentd ran on it.
	errMoved = fmt.Errorf("the store was marked as moved to another (consentd copy), so that two stores never grow one log: serve the store it moved to: %w", consent.ErrUnavailable)

	// errDuplicate is an integration refused because a record id of it is stored
	// already.
	errDuplicate = errors.New("a record id of the integration is stored already")

	// errLostAnswer stands, in tests, for the answer to a commit that the connection
	// lost: the commit is stored, and the sequencer does not know it.
	errLostAnswer = errors.New("the connection was lost before the commit's answer")
)
