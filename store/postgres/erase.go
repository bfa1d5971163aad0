package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	consent "github.com/mixvoip/consentd"
)

// Erase drops the identifying part of each record of consentID on sites (all if
// empty), those still pending included. The record's leaf keeps that part's salted
// digest, so the log still verifies without it.
//
// It holds the log head's row meanwhile, so that no integration runs between its
// two updates: an integration that read a pending record before its erasure erases
// it in records too (consentd_integrated).
func (s *Store) Erase(ctx context.Context, consentID string, sites []string) (int, error) {
	id, err := uuid.Parse(consentID)
	if err != nil {
		return 0, fmt.Errorf("postgres: erase: %w", consent.Errorf(consent.EInvalid, "consent id %q is not a UUID", consentID))
	}
	erased := 0
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT 1 FROM log_head WHERE id = 1 FOR SHARE"); err != nil {
			return err
		}
		for _, table := range []string{"records", "pending"} {
			tag, err := tx.Exec(ctx, `UPDATE `+table+` SET identifying = ''
				WHERE consent_id = $1 AND identifying <> '' AND (cardinality($2::text[]) = 0 OR site = ANY($2))`, id, nonNil(sites))
			if err != nil {
				return err
			}
			erased += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: erase: %w", err)
	}
	return erased, nil
}
