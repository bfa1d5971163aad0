package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
)

// Erase drops the identifying part of each record of consentID on sites (all if
// empty). The record's leaf keeps that part's salted digest, so the log still
// verifies without it.
func (s *Store) Erase(ctx context.Context, consentID string, sites []string) (int, error) {
	id, err := uuid.Parse(consentID)
	if err != nil {
		return 0, fmt.Errorf("postgres: erase: %w", consent.Errorf(consent.EInvalid, "consent id %q is not a UUID", consentID))
	}
	tag, err := s.pool.Exec(ctx, `UPDATE records SET identifying = ''
		WHERE consent_id = $1 AND identifying <> '' AND (cardinality($2::text[]) = 0 OR site = ANY($2))`, id, nonNil(sites))
	if err != nil {
		return 0, fmt.Errorf("postgres: erase: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
