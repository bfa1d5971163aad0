package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mixvoip/consentd/proof"
)

// PublishKeys writes the endorsements of keys (proof.Keyring.Endorsements) that the
// database lacks, so that every instance on it learns those keys (LearnKeys). An
// instance publishes a keyring before it signs with it: the others then verify what
// it signs as soon as they read its checkpoints.
func (s *Store) PublishKeys(ctx context.Context, keys *proof.Keyring) error {
	batch := &pgx.Batch{}
	for _, e := range keys.Endorsements() {
		batch.Queue("INSERT INTO key_endorsements (kid, endorsed_by, statement, signature) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
			e.Key, e.By, e.Statement, e.Signature)
	}
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("postgres: publish keys: %w", err)
	}
	return nil
}

// LearnKeys reads the endorsements in the database and adds to the store's keyring
// the keys its keys endorse (proof.Keyring.Learn): it returns the ids of the keys it
// learned now, and of those it does not trust.
func (s *Store) LearnKeys(ctx context.Context) (learned, refused []string, err error) {
	rows, err := s.pool.Query(ctx, "SELECT kid, endorsed_by, statement, signature FROM key_endorsements ORDER BY kid, endorsed_by")
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: learn keys: %w", err)
	}
	var endorsements []proof.Endorsement
	var e proof.Endorsement
	_, err = pgx.ForEachRow(rows, []any{&e.Key, &e.By, &e.Statement, &e.Signature}, func() error {
		endorsements = append(endorsements, e)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: learn keys: %w", err)
	}
	learned, refused = s.keys.Learn(endorsements)
	return learned, refused, nil
}
