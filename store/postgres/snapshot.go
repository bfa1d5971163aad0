package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	consent "github.com/mixvoip/consentd"
)

// PutSnapshot stores snap unless its site and fingerprint have a snapshot already:
// the first one stays.
func (s *Store) PutSnapshot(ctx context.Context, snap *consent.Snapshot) error {
	value, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("postgres: put snapshot: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO snapshots (site, fingerprint, created_at, snapshot) VALUES ($1, $2, $3, $4)
		ON CONFLICT (site, fingerprint) DO NOTHING`, snap.Site, snap.Fingerprint, snap.CreatedAt, value)
	if err != nil {
		return fmt.Errorf("postgres: put snapshot %s %s: %w", snap.Site, snap.Fingerprint, err)
	}
	return nil
}

// Snapshot returns the snapshot of site's fingerprint.
func (s *Store) Snapshot(ctx context.Context, site, fingerprint string) (*consent.Snapshot, error) {
	var value []byte
	err := s.pool.QueryRow(ctx, "SELECT snapshot FROM snapshots WHERE site = $1 AND fingerprint = $2", site, fingerprint).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, consent.Errorf(consent.ENotFound, "no snapshot of %s for site %s", fingerprint, site)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshot: %w", err)
	}
	snap := new(consent.Snapshot)
	if err := json.Unmarshal(value, snap); err != nil {
		return nil, fmt.Errorf("postgres: snapshot %s %s: %w", site, fingerprint, err)
	}
	return snap, nil
}
