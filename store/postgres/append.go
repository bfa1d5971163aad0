package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// request is one Append waiting for the writer, prepared by its caller: encoding and
// hashing run in parallel, the writer only writes, extends the tree and signs.
type request struct {
	record      *consent.Record
	recordID    uuid.UUID
	consentID   uuid.UUID
	decision    []byte
	identifying []byte
	leaf        []byte
	leafHash    tlog.Hash
	snapshot    string
	done        chan appended // buffered: the writer never waits for a caller that gave up
}

// appended is the writer's answer to a request: where its leaf is, and the batch it
// was committed in, which proves it (nil if an earlier commit, whose outcome was
// unknown, stored it).
type appended struct {
	index int64
	batch *translog.Batch
	err   error
}

// Append stores r durably with its leaf in the log, under a signed checkpoint, and
// returns its receipt once the transaction is committed. See consent.RecordStore.
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
	var a appended
	select {
	case a = <-req.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("postgres: append: %w", ctx.Err())
	}
	if a.err != nil {
		return nil, a.err
	}
	var p *translog.Proof
	if a.batch != nil {
		p, err = a.batch.Prove(a.index, translog.Hashes(ctx, s))
	} else {
		p, err = translog.Prove(translog.Hashes(ctx, s), a.index, s.log.Load().Head())
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
	req := &request{record: r, recordID: recordID, consentID: consentID, done: make(chan appended, 1)}
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
	req.leafHash = translog.LeafHash(req.leaf)
	return req, nil
}

// commitTimeout bounds one try of a commit: a database that stopped answering, its
// connection still open, must not hold the writer, and Close, for as long as TCP
// takes to notice.
const commitTimeout = 30 * time.Second

// commitAttempts bounds how often a batch is tried when the database fails in a way
// that another try may not (a lost connection, a serialization failure).
const commitAttempts = 5

// commit writes batch in one transaction and answers every request in it once that
// transaction is committed. A batch whose commit failed in a way worth another try
// is tried again, after the log's head is read again from the database: a commit
// whose outcome is unknown may have stored it, and the retry then finds its records
// there, byte for byte, and answers them as stored.
func (s *Store) commit(batch []*request) {
	start := time.Now()
	var answers map[*request]appended
	var err error
	// After a failed commit, whose records may be stored, every batch looks up its
	// record ids first; otherwise the unique keys find a duplicate.
	lookUp := s.stale
	for attempt := range commitAttempts {
		if err = s.failure(); err != nil {
			break
		}
		if attempt > 0 && !errors.Is(err, errDuplicate) {
			time.Sleep(backoff(attempt)) // the database's recovery, which nothing announces
		}
		if s.stale {
			ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
			err = s.openLog(ctx)
			cancel()
			if err != nil {
				continue
			}
			s.stale, lookUp = false, true
		}
		if answers, err = s.commitOnce(batch, lookUp); err == nil {
			break
		}
		if errors.Is(err, errDuplicate) {
			lookUp = true // nothing was stored: find which record was there already
			continue
		}
		s.stale = true // the database's head may be ahead of the one in memory
		if errors.Is(err, errForeignHead) || errors.Is(err, errMoved) {
			s.fail(err)
		}
		if !worthRetrying(err) {
			break
		}
	}
	if s.onCommit != nil {
		s.onCommit(len(batch), time.Since(start))
	}
	for _, req := range batch {
		a, ok := answers[req]
		if !ok {
			a.err = fmt.Errorf("postgres: append: %w", err)
		}
		req.done <- a
	}
}

// commitOnce writes the requests of batch that are not stored yet and returns the
// answer to each request, or an error and no answers. With lookUp, it first looks up
// the batch's record ids: a record stored byte for byte by a commit whose answer was
// lost is answered as stored, another one with the same id is refused.
//
// The check of the log's head, the batch's records, leaves and hashes and the new
// head go to the database in one round trip, as one pgx batch, which PostgreSQL runs
// in one implicit transaction at its default isolation. Read committed does: the
// first statement (consentd_expect_head) locks the head's row and fails the whole
// transaction unless the head is the one this writer extends, so a second writer on
// the database cannot make it fork the log.
func (s *Store) commitOnce(batch []*request, lookUp bool) (map[*request]appended, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	stored := map[uuid.UUID]storedLeaf{}
	if lookUp {
		var err error
		if stored, err = s.storedLeaves(ctx, batch); err != nil {
			return nil, err
		}
	}
	answers := make(map[*request]appended, len(batch))
	var fresh []*request
	seen := map[uuid.UUID]bool{}
	for _, req := range batch {
		switch leaf, ok := stored[req.recordID]; {
		case ok && bytes.Equal(leaf.bytes, req.leaf):
			answers[req] = appended{index: leaf.index} // stored by a commit whose answer was lost
		case ok || seen[req.recordID]:
			answers[req] = appended{err: fmt.Errorf("postgres: append: %w", consent.Errorf(consent.EInvalid, "record id %s is already stored", req.recordID))}
		default:
			seen[req.recordID] = true
			fresh = append(fresh, req)
		}
	}
	if len(fresh) == 0 {
		return answers, nil
	}
	signer, err := s.keys.LogSigner(s.origin)
	if err != nil {
		return nil, err
	}
	log := s.log.Load()
	head := log.Head()
	pending := &pgx.Batch{}
	pending.Queue("SELECT consentd_expect_head($1)", head.Signed)
	queueRecords(pending, fresh, head.Size)
	hashes := make([]tlog.Hash, len(fresh))
	for i, req := range fresh {
		hashes[i] = req.leafHash
	}
	written := map[int64]tlog.Hash{}
	b, err := log.Append(&logTx{ctx: ctx, q: s.pool, edge: s.edge, written: written, batch: pending}, hashes, signer)
	if err != nil {
		return nil, err
	}
	err = s.pool.SendBatch(ctx, pending).Close()
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "CD001":
		return nil, errForeignHead
	case errors.As(err, &pgErr) && pgErr.Code == "CD002":
		return nil, errMoved
	case errors.As(err, &pgErr) && pgErr.Code == "23505" && (pgErr.ConstraintName == "leaves_record_id_key" || pgErr.ConstraintName == "records_pkey"):
		return nil, errDuplicate
	case err == nil && s.loseAnswer.Load() != nil && (*s.loseAnswer.Load())():
		err = errLostAnswer
	}
	if err != nil {
		return nil, err
	}
	log.Commit(b)
	if s.edge = nextEdge(b.Checkpoint.Size, s.edge, written); s.edge == nil {
		s.edge = map[int64]tlog.Hash{} // read from the database as any hash
	}
	for j, req := range fresh {
		answers[req] = appended{index: head.Size + int64(j), batch: b}
	}
	return answers, nil
}

// errMoved is a store that consentd copy marked as moved to another while this
// consentd ran on it.
var errMoved = fmt.Errorf("the store was marked as moved to another (consentd copy), so that two stores never grow one log: serve the store it moved to: %w", consent.ErrUnavailable)

// errDuplicate says that a record id of a batch was stored already.
var errDuplicate = errors.New("a record id of the batch is stored already")

// errLostAnswer stands, in tests, for the answer to a commit that the connection
// lost: the commit is stored, and the writer does not know it.
var errLostAnswer = errors.New("the connection was lost before the commit's answer")

// errForeignHead is a log head in the database that is not the one this store signed
// last: another consentd writes to the same database. The store then takes no more
// appends.
var errForeignHead = fmt.Errorf("the log's head in the database is not the one this consentd signed last: another consentd writes to the same database, or the database lost commits (a failover to a replica behind, a restore); extending it would fork the log: %w", consent.ErrUnavailable)

// queueRecords queues the inserts of the leaves and records of reqs, the first at
// index first.
func queueRecords(b *pgx.Batch, reqs []*request, first int64) {
	n := len(reqs)
	var (
		indexes                                 = make([]int64, n)
		ids, consentIDs                         = make([]uuid.UUID, n), make([]uuid.UUID, n)
		leaves, decisions, identifying          = make([][]byte, n), make([][]byte, n), make([][]byte, n)
		sites, actions, fingerprints, languages = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		recordedAt                              = make([]time.Time, n)
	)
	for i, req := range reqs {
		r := req.record
		indexes[i], ids[i], consentIDs[i] = first+int64(i), req.recordID, req.consentID
		leaves[i], decisions[i], identifying[i] = req.leaf, req.decision, req.identifying
		sites[i], actions[i], fingerprints[i], languages[i], recordedAt[i] = r.Site, string(r.Action), r.Fingerprint, r.Language, r.RecordedAt
	}
	b.Queue(`INSERT INTO leaves (leaf_index, record_id, leaf) SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bytea[])`, indexes, ids, leaves)
	b.Queue(`INSERT INTO records (record_id, leaf_index, consent_id, site, recorded_at, action, fingerprint, language, decision, identifying)
		SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::bytea[])`,
		ids, indexes, consentIDs, sites, recordedAt, actions, fingerprints, languages, decisions, identifying)
}

// storedLeaf is a leaf in the database.
type storedLeaf struct {
	index int64
	bytes []byte
}

// storedLeaves returns the stored leaves of the requests' record ids, by id.
func (s *Store) storedLeaves(ctx context.Context, reqs []*request) (map[uuid.UUID]storedLeaf, error) {
	ids := make([]uuid.UUID, len(reqs))
	for i, req := range reqs {
		ids[i] = req.recordID
	}
	rows, err := s.pool.Query(ctx, "SELECT record_id, leaf_index, leaf FROM leaves WHERE record_id = ANY($1)", ids)
	if err != nil {
		return nil, err
	}
	out := map[uuid.UUID]storedLeaf{}
	var id uuid.UUID
	var leaf storedLeaf
	_, err = pgx.ForEachRow(rows, []any{&id, &leaf.index, &leaf.bytes}, func() error {
		out[id] = leaf // pgx copies what it scans into a []byte
		return nil
	})
	return out, err
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
