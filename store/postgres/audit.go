package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	consent "github.com/mixvoip/consentd"
)

// AppendAudit stores entries in one transaction, all or none; an entry stored again
// replaces the first.
func (s *Store) AppendAudit(ctx context.Context, entries ...*consent.AuditEntry) error {
	batch := &pgx.Batch{}
	for _, e := range entries {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return fmt.Errorf("postgres: append audit: %w", consent.Errorf(consent.EInvalid, "audit id %q is not a UUID", e.ID))
		}
		value, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("postgres: append audit: %w", err)
		}
		batch.Queue(`INSERT INTO audit (id, at, entry) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET at = excluded.at, entry = excluded.entry`, id, e.At, value)
	}
	// Read committed: each statement writes one row by its key.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	return nil
}

// Audit returns up to limit entries after the entry after, oldest first.
func (s *Store) Audit(ctx context.Context, after string, limit int) ([]*consent.AuditEntry, error) {
	var start uuid.UUID // the nil UUID sorts before every UUIDv7
	if after != "" {
		id, err := uuid.Parse(after)
		if err != nil {
			return nil, fmt.Errorf("postgres: audit: %w", consent.Errorf(consent.EInvalid, "after %q is not an audit id", after))
		}
		start = id
	}
	rows, err := s.pool.Query(ctx, "SELECT entry FROM audit WHERE id > $1 ORDER BY id LIMIT $2", start, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit: %w", err)
	}
	out := []*consent.AuditEntry{}
	var value []byte
	_, err = pgx.ForEachRow(rows, []any{&value}, func() error {
		e := new(consent.AuditEntry)
		if err := json.Unmarshal(value, e); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: audit: %w", err)
	}
	return out, nil
}

// PurgeAudit removes the entries made before before: those whose UUIDv7 id, which
// starts with the time it was made, sorts before before's millisecond. Each
// transaction removes a bounded number of them.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	bound, ok := consent.AuditIDBound(before)
	if !ok {
		return 0, nil
	}
	end := uuid.UUID(bound)
	removed := 0
	for {
		tag, err := s.pool.Exec(ctx, "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE id < $1 ORDER BY id LIMIT $2)", end, purgeAuditBatch)
		if err != nil {
			return removed, fmt.Errorf("postgres: purge audit: %w", err)
		}
		removed += int(tag.RowsAffected())
		if tag.RowsAffected() < purgeAuditBatch {
			return removed, nil
		}
	}
}

// purgeAuditBatch is how many audit entries one statement of PurgeAudit removes.
const purgeAuditBatch = 10000
