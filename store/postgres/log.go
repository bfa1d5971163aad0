package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// logTx is the log's storage: its hashes in log_hashes and its latest checkpoint in
// log_head. It reads the hashes of the tree's right edge, which extending the tree
// needs, from memory (edge): a batch costs no round trip per leaf. Its writes are
// queued in batch, to commit with the records.
type logTx struct {
	ctx     context.Context
	q       querier
	edge    map[int64]tlog.Hash
	written map[int64]tlog.Hash // by WriteHashes, for the next edge
	batch   *pgx.Batch
}

var _ translog.Tx = (*logTx)(nil)

func (l *logTx) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var missing []int64
	for i, x := range indexes {
		if h, ok := l.edge[x]; ok {
			out[i] = h
		} else {
			missing = append(missing, x)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	stored, err := readHashes(l.ctx, l.q, missing)
	if err != nil {
		return nil, err
	}
	for i, x := range indexes {
		if h, ok := stored[x]; ok {
			out[i] = h
		}
	}
	return out, nil
}

func (l *logTx) WriteHashes(start int64, hashes []tlog.Hash) error {
	indexes := make([]int64, len(hashes))
	values := make([][]byte, len(hashes))
	for i := range hashes {
		indexes[i], values[i] = start+int64(i), hashes[i][:]
		if l.written != nil {
			l.written[indexes[i]] = hashes[i]
		}
	}
	l.batch.Queue("INSERT INTO log_hashes (storage_index, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])", indexes, values)
	return nil
}

func (l *logTx) Checkpoint() ([]byte, error) {
	var signed []byte
	err := l.q.QueryRow(l.ctx, "SELECT checkpoint FROM log_head WHERE id = 1").Scan(&signed)
	return signed, err
}

func (l *logTx) PutCheckpoint(signed []byte) error {
	l.batch.Queue("UPDATE log_head SET checkpoint = $1, signed_at = now() WHERE id = 1", signed)
	return nil
}

// readHashes returns the stored hashes at indexes, or an error with code ENotFound if
// one is missing.
func readHashes(ctx context.Context, q querier, indexes []int64) (map[int64]tlog.Hash, error) {
	rows, err := q.Query(ctx, "SELECT storage_index, hash FROM log_hashes WHERE storage_index = ANY($1)", indexes)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]tlog.Hash, len(indexes))
	var x int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&x, &h}, func() error {
		if len(h) != tlog.HashSize {
			return fmt.Errorf("the hash at storage index %d is %d bytes long", x, len(h))
		}
		out[x] = tlog.Hash(h)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, x := range indexes {
		if _, ok := out[x]; !ok {
			return nil, consent.Errorf(consent.ENotFound, "no hash at storage index %d", x)
		}
	}
	return out, nil
}

// edgeIndexes returns the storage indexes of the right edge of a tree of size n: the
// roots of its complete subtrees, one per bit set in n, which are all that appending
// to it reads of the tree as it was.
func edgeIndexes(n int64) []int64 {
	var out []int64
	for level := 0; n>>level > 0; level++ {
		if n>>level&1 == 1 {
			out = append(out, tlog.StoredHashIndex(level, n>>level-1))
		}
	}
	return out
}

// nextEdge returns the right edge of a tree of size n from the hashes a batch wrote
// and the edge before it; nil, to be read again, if one is missing.
func nextEdge(n int64, before, written map[int64]tlog.Hash) map[int64]tlog.Hash {
	edge := map[int64]tlog.Hash{}
	for _, x := range edgeIndexes(n) {
		h, ok := written[x]
		if !ok {
			h, ok = before[x]
		}
		if !ok {
			return nil
		}
		edge[x] = h
	}
	return edge
}

// LastCheckpoint returns the log's newest checkpoint, as the database holds it now:
// another instance's sequencer may have integrated records since this one's did.
func (s *Store) LastCheckpoint(ctx context.Context) (*consent.Checkpoint, error) {
	head, signedAt, err := s.readHeadAt(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: last checkpoint: %w", err)
	}
	if head.Size == 0 {
		return nil, fmt.Errorf("postgres: last checkpoint: %w", consent.Errorf(consent.ENotFound, "no checkpoint was signed yet"))
	}
	cp := *head
	cp.SignedAt = signedAt
	return &cp, nil
}

// ReadHashes returns the hashes of the log's tree at the storage indexes.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	stored, err := readHashes(ctx, s.pool, indexes)
	if err != nil {
		return nil, fmt.Errorf("postgres: read hashes: %w", err)
	}
	out := make([][32]byte, len(indexes))
	for i, x := range indexes {
		out[i] = stored[x]
	}
	return out, nil
}

// openLog reads the log's head, checks it against the stored tree (translog.Open),
// and reads its right edge, for the sequencer: when the store opens, when this
// instance takes the lease, and after a failed integration. The head must extend
// every checkpoint this instance saw (see readHead).
func (s *Store) openLog(ctx context.Context) error {
	seen := s.head.Load()
	tx := &logTx{ctx: ctx, q: s.pool}
	var log *translog.Log
	err := s.verified(ctx, func(verifier *translog.Verifier) (err error) {
		log, err = translog.Open(tx, verifier)
		return err
	})
	if err != nil {
		return err
	}
	if seen != nil {
		if err := extends(log.Head(), seen, tlog.HashReaderFunc(tx.ReadHashes)); err != nil {
			if errors.Is(err, errForked) {
				s.fail(err)
			}
			return err
		}
	}
	edge, err := readHashes(ctx, s.pool, edgeIndexes(log.Head().Size))
	if err != nil {
		return fmt.Errorf("the right edge of the log's tree: %w", err)
	}
	s.sequencer.log, s.sequencer.edge = log, edge
	s.sawHead(log.Head())
	return nil
}

// extends returns an error unless the tree of head, whose hashes r reads, extends
// the tree of last: one that wraps errForked if it does not, another if the hashes
// could not be read.
func extends(head, last *consent.Checkpoint, r tlog.HashReader) error {
	if head.Size < last.Size {
		return fmt.Errorf("the database's log has %d leaves, but this consentd saw a checkpoint of %d, which receipts may hold: %w", head.Size, last.Size, errForked)
	}
	p, err := translog.ProveConsistency(r, last.Size, head.Size)
	if consent.ErrorCode(err) == consent.ENotFound {
		return fmt.Errorf("the database's log lacks hashes of the tree of %d leaves this consentd saw (%v): %w", last.Size, err, errForked)
	}
	if err != nil {
		return err
	}
	if err := translog.VerifyConsistency(p, last, head); err != nil {
		return fmt.Errorf("the database's log does not extend the tree of %d leaves this consentd saw: %w", last.Size, errForked)
	}
	return nil
}

// errForked is a database whose log does not extend a checkpoint this consentd saw.
var errForked = errors.New("the database lost commits (a failover to a replica behind, a restore), and extending it would fork the log; start a new log linked to this one (consentd restore --origin NEW)")

// verified calls open with the verifier of the log. If a note was signed by a key
// unknown here, it learns the keys in the database and calls it once more: another
// instance may sign with a key it published a moment ago.
func (s *Store) verified(ctx context.Context, open func(*translog.Verifier) error) error {
	try := func() error {
		verifier, err := s.keys.LogVerifier(s.origin)
		if err != nil {
			return err
		}
		return open(verifier)
	}
	err := try()
	if errors.Is(err, translog.ErrUnknownKey) {
		if _, _, errLearn := s.LearnKeys(ctx); errLearn == nil {
			err = try()
		}
	}
	return err
}
