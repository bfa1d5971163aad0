package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// purgeBatch is how many records one purge transaction removes: appends wait for the
// head row that a purge does not take, but a short transaction keeps the table's
// locks and the WAL of one step small.
const purgeBatch = 5000

// Purge removes the records of each site in before that were recorded before the
// site's time, and returns how many it removed. Records of other sites stay.
//
// A purged record's leaf stays in the log as its tombstone, and a signed statement
// per site, stored in the transaction that removes the site's first record, says
// what was purged from which tree, so that verification tells a purge from a
// deletion. Only records in that tree go: a record logged after it stays.
func (s *Store) Purge(ctx context.Context, before map[string]time.Time) (int, error) {
	head, err := s.readHead(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: purge: %w", err)
	}
	signer, err := s.keys.LogSigner(s.origin)
	if err != nil {
		return 0, fmt.Errorf("postgres: purge: %w", err)
	}
	at := time.Now().UTC()
	purged := 0
	for site, cutoff := range before {
		var statement *translog.Purge
		for {
			found, n, err := s.purgeStep(ctx, site, cutoff, head, at, signer, &statement)
			if err != nil {
				return purged, fmt.Errorf("postgres: purge %s: %w", site, err)
			}
			purged += n
			if found < purgeBatch {
				break
			}
		}
	}
	return purged, nil
}

// purgeStep removes up to purgeBatch records of site recorded before cutoff in one
// transaction, in the tree of head, signing and storing the site's statement in the
// first (*statement is nil until then). It returns how many it found and how many it
// removed.
func (s *Store) purgeStep(ctx context.Context, site string, cutoff time.Time, head *consent.Checkpoint, at time.Time, signer *translog.Signer, statement **translog.Purge) (found, n int, err error) {
	// Read committed: the rows it deletes are those it read, by key.
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT l.leaf_index, l.leaf FROM records r JOIN leaves l USING (leaf_index)
			WHERE r.site = $1 AND r.recorded_at < $2 AND r.leaf_index < $3 AND l.leaf_index < $3 ORDER BY r.leaf_index LIMIT $4`, site, cutoff, head.Size, purgeBatch)
		if err != nil {
			return err
		}
		var doomed []uuid.UUID
		var index int64
		var leafBytes []byte
		var covered = *statement
		_, err = pgx.ForEachRow(rows, []any{&index, &leafBytes}, func() error {
			found++
			var leaf translog.Leaf
			if err := leaf.UnmarshalBinary(leafBytes); err != nil {
				return fmt.Errorf("leaf %d: %w", index, err)
			}
			if covered == nil {
				if covered, err = signer.SignPurge(head, site, cutoff); err != nil {
					return err
				}
			}
			if covered.Covers(index, &leaf) {
				doomed = append(doomed, leaf.RecordID)
			}
			return nil
		})
		if err != nil || len(doomed) == 0 {
			return err
		}
		if *statement == nil {
			if _, err := tx.Exec(ctx, "INSERT INTO purges (at, site, statement) VALUES ($1, $2, $3)", at, site, covered.Signed); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, "DELETE FROM records WHERE record_id = ANY($1)", doomed)
		n = int(tag.RowsAffected())
		if err == nil {
			*statement = covered
		}
		return err
	})
	return found, n, err
}
