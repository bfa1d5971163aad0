package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// Verify checks the store's log against its keys, and against the archived
// checkpoints (see consent.LogStore), in one snapshot of the database.
func (s *Store) Verify(ctx context.Context, archived ...*consent.Checkpoint) (*consent.Verification, error) {
	// The keys first: checkpoints that other instances signed with keys they
	// published since are not missing a key.
	if _, _, err := s.LearnKeys(ctx); err != nil {
		return nil, fmt.Errorf("postgres: verify: %w", err)
	}
	verifier, err := s.keys.LogVerifier(s.origin)
	if err != nil {
		return nil, fmt.Errorf("postgres: verify: %w", err)
	}
	v, err := verify(ctx, s.pool, verifier, archived)
	if err != nil {
		return nil, fmt.Errorf("postgres: verify: %w", err)
	}
	return v, nil
}

// VerifyDatabase checks the log of the store in the database at url, served or not
// (a copy in progress, say), with verifier, as Verify does.
func VerifyDatabase(ctx context.Context, url string, verifier *translog.Verifier, archived ...*consent.Checkpoint) (*consent.Verification, error) {
	var v *consent.Verification
	err := withConn(ctx, url, func(conn *pgx.Conn) error {
		var err error
		v, err = verify(ctx, conn, verifier, archived)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: verify: %w", err)
	}
	return v, nil
}

// verify runs translog.Verify in one transaction of db.
func verify(ctx context.Context, db interface {
	BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
}, verifier *translog.Verifier, archived []*consent.Checkpoint) (*consent.Verification, error) {
	var v *consent.Verification
	// Repeatable read: one snapshot of the whole store, however long the walk.
	err := pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		v, err = translog.Verify(ctx, &stored{ctx: ctx, tx: tx, hashes: map[int64][]tlog.Hash{}}, verifier, archived)
		if err != nil {
			return err
		}
		return checkPending(ctx, tx, v)
	})
	return v, err
}

// StuckAfter is how long a record may wait as pending before verification says the
// sequencer is stuck: many times the lease, which a healthy store integrates within.
const StuckAfter = 30 * time.Second

// checkPending counts the records written but not yet integrated into the log, and
// says the sequencer is stuck if one has waited longer than StuckAfter.
func checkPending(ctx context.Context, tx pgx.Tx, v *consent.Verification) error {
	var stuck int
	var oldest *time.Time
	err := tx.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE written_at < now() - $1 * interval '1 millisecond'), min(written_at) FROM pending",
		StuckAfter.Milliseconds()).Scan(&v.Pending, &stuck, &oldest)
	if err != nil {
		return fmt.Errorf("pending records: %w", err)
	}
	if stuck > 0 {
		v.SequencerStuck = fmt.Sprintf("sequencer stuck: %d of %d records written are not in the log after %s, the oldest since %s; no instance integrates them: check that a consentd runs on the database and can write to it (the lease is in sequencer_lease)",
			stuck, v.Pending, StuckAfter, oldest.UTC().Format(time.RFC3339))
	}
	return nil
}

// stored is the store in one transaction, as translog.Verify reads it.
type stored struct {
	ctx context.Context
	tx  pgx.Tx
	// next is the record joined to the leaf that Leaves hands out, so that the walk
	// reads each record with its leaf, not in a query of its own.
	next *identifiedRecord
	// hashes are chunks of the tree's stored hashes, by chunk number: the walk reads
	// them in order, a chunk a query.
	hashes map[int64][]tlog.Hash
}

var _ translog.Stored = (*stored)(nil)

func (s *stored) Origin() (string, error) {
	var origin string
	err := s.tx.QueryRow(s.ctx, "SELECT origin FROM log_head WHERE id = 1").Scan(&origin)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil // no log: every leaf there is a stray
	}
	return origin, err
}

func (s *stored) Links(fn func(name string, signed []byte) error) error {
	rows, err := s.tx.Query(s.ctx, "SELECT id, statement FROM links ORDER BY id DESC")
	if err != nil {
		return err
	}
	var id int64
	var signed []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &signed}, func() error { return fn("id "+strconv.FormatInt(id, 10), signed) })
	return err
}

func (s *stored) Purges(fn func(at time.Time, signed []byte) error) error {
	rows, err := s.tx.Query(s.ctx, "SELECT at, statement FROM purges ORDER BY id")
	if err != nil {
		return err
	}
	var at time.Time
	var signed []byte
	_, err = pgx.ForEachRow(rows, []any{&at, &signed}, func() error { return fn(at, signed) })
	return err
}

func (s *stored) Snapshots(fn func(site, fingerprint string, snapshot []byte) error) error {
	rows, err := s.tx.Query(s.ctx, "SELECT site, fingerprint, snapshot FROM snapshots")
	if err != nil {
		return err
	}
	var site, fingerprint string
	var snapshot []byte
	_, err = pgx.ForEachRow(rows, []any{&site, &fingerprint, &snapshot}, func() error { return fn(site, fingerprint, snapshot) })
	return err
}

func (s *stored) Leaves(fn func(index int64, leaf []byte) error) error {
	// A page at a time, read whole: the transaction's one connection cannot read
	// a record or a hash while a query streams.
	type row struct {
		index  int64
		leaf   []byte
		record *identifiedRecord
	}
	for next := int64(0); ; {
		// The record that claims each leaf's index, by the index on both tables: the
		// walk asks for the record the leaf names, which is that one unless the
		// store was altered (then Record reads it by its id).
		rows, err := s.tx.Query(s.ctx, `SELECT l.leaf_index, l.leaf, r.record_id, r.leaf_index, r.consent_id, r.decision, r.identifying
			FROM leaves l LEFT JOIN records r ON r.leaf_index = l.leaf_index AND r.leaf_index >= $1 AND r.leaf_index < $1 + $2
			WHERE l.leaf_index >= $1 AND l.leaf_index < $1 + $2 ORDER BY l.leaf_index`, next, leafPage)
		if err != nil {
			return err
		}
		var page []row
		var index int64
		var leaf []byte
		var r recordRow
		_, err = pgx.ForEachRow(rows, append([]any{&index, &leaf}, r.scanned()...), func() error {
			page = append(page, row{index, leaf, r.stored()})
			return nil
		})
		if err != nil {
			return err
		}
		for _, row := range page {
			s.next = row.record
			if err := fn(row.index, row.leaf); err != nil {
				return err
			}
		}
		s.next = nil
		next += leafPage
		if len(page) == 0 {
			// The end, or a gap of a page or more that the walk must still see.
			var after *int64
			if err := s.tx.QueryRow(s.ctx, "SELECT min(leaf_index) FROM leaves WHERE leaf_index >= $1", next).Scan(&after); err != nil || after == nil {
				return err
			}
			next = *after
		}
	}
}

// leafPage is how many leaves, with their records, the walk reads a query.
const leafPage = 10000

func (s *stored) Leaf(index int64) ([]byte, error) {
	var leaf []byte
	err := s.tx.QueryRow(s.ctx, "SELECT leaf FROM leaves WHERE leaf_index = $1", index).Scan(&leaf)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return leaf, err
}

func (s *stored) Record(id uuid.UUID) (*translog.StoredRecord, error) {
	if s.next != nil && s.next.ID == id {
		return &s.next.StoredRecord, nil
	}
	var r recordRow
	err := s.tx.QueryRow(s.ctx, "SELECT record_id, leaf_index, consent_id, decision, identifying FROM records WHERE record_id = $1", id).Scan(r.scanned()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r.stored().StoredRecord, nil
}

func (s *stored) RecordCount() (int, error) {
	var n int
	err := s.tx.QueryRow(s.ctx, "SELECT count(*) FROM records").Scan(&n)
	return n, err
}

func (s *stored) Records(fn func(id uuid.UUID, r *translog.StoredRecord) error) error {
	// Read whole: fn reads leaves on the transaction's one connection. Only a store
	// with more records than leaves name comes here.
	rows, err := s.tx.Query(s.ctx, "SELECT record_id, leaf_index, consent_id, decision, identifying FROM records")
	if err != nil {
		return err
	}
	var all []*identifiedRecord
	var r recordRow
	if _, err := pgx.ForEachRow(rows, r.scanned(), func() error { all = append(all, r.stored()); return nil }); err != nil {
		return err
	}
	for _, sr := range all {
		if err := fn(sr.ID, &sr.StoredRecord); err != nil {
			return err
		}
	}
	return nil
}

func (s *stored) Checkpoint() ([]byte, error) {
	var signed []byte
	err := s.tx.QueryRow(s.ctx, "SELECT checkpoint FROM log_head WHERE id = 1").Scan(&signed)
	return signed, err
}

// hashChunk is how many stored hashes one query of the walk reads.
const hashChunk = 1 << 14

// keptChunks bounds the chunks of hashes a walk keeps: the walk reads the newest, and
// now and then an old one, the root of a complete subtree to the left.
const keptChunks = 64

func (s *stored) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		chunk, err := s.chunk(x / hashChunk)
		if err != nil {
			return nil, err
		}
		if x%hashChunk >= int64(len(chunk)) {
			return nil, consent.Errorf(consent.ENotFound, "no hash at storage index %d", x)
		}
		out[i] = chunk[x%hashChunk]
	}
	return out, nil
}

// chunk returns the stored hashes from storage index n*hashChunk on, as many as are
// stored without a gap, up to hashChunk.
func (s *stored) chunk(n int64) ([]tlog.Hash, error) {
	if c, ok := s.hashes[n]; ok {
		return c, nil
	}
	if len(s.hashes) >= keptChunks {
		clear(s.hashes)
	}
	first := n * hashChunk
	rows, err := s.tx.Query(s.ctx, "SELECT storage_index, hash FROM log_hashes WHERE storage_index >= $1 AND storage_index < $2 ORDER BY storage_index", first, first+hashChunk)
	if err != nil {
		return nil, err
	}
	var c []tlog.Hash
	var x int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&x, &h}, func() error {
		if x != first+int64(len(c)) || len(h) != tlog.HashSize {
			return errStopChunk // a gap, or a hash of the wrong size: missing from here on
		}
		c = append(c, tlog.Hash(h))
		return nil
	})
	if err != nil && !errors.Is(err, errStopChunk) {
		return nil, err
	}
	s.hashes[n] = c
	return c, nil
}

var errStopChunk = errors.New("end of the chunk")

// recordRow is a row of records as verification reads it; its id NULL where a leaf
// has no record.
type recordRow struct {
	id          *uuid.UUID
	index       *int64
	consentID   *uuid.UUID
	decision    []byte
	identifying []byte
}

func (r *recordRow) scanned() []any {
	return []any{&r.id, &r.index, &r.consentID, &r.decision, &r.identifying}
}

// identifiedRecord is a stored record and its id.
type identifiedRecord struct {
	ID uuid.UUID
	translog.StoredRecord
}

// stored returns the record r holds, nil if it holds none.
func (r *recordRow) stored() *identifiedRecord {
	if r.id == nil {
		return nil
	}
	sr := &identifiedRecord{ID: *r.id, StoredRecord: translog.StoredRecord{Decision: r.decision, Identifying: r.identifying}}
	if r.index != nil {
		sr.Index = *r.index
	}
	if r.consentID != nil {
		sr.ConsentID = *r.consentID
	}
	return sr
}
