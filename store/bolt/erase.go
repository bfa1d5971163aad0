package bolt

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

// Erase drops the identifying part of each record of consentID on sites (all if
// empty). The header keeps that part's digest, and the chain links cover only the
// digest, so the chain still verifies without it.
func (s *Store) Erase(ctx context.Context, consentID string, sites []string) (int, error) {
	id, err := uuid.Parse(consentID)
	if err != nil {
		return 0, fmt.Errorf("bolt: erase: %w", consent.Errorf(consent.EInvalid, "consent id %q is not a UUID", consentID))
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: erase: %w", err)
	}
	n := 0
	err = s.db.Update(func(tx *bolt.Tx) error {
		records := tx.Bucket(bucketRecords)
		for _, rid := range s.index.records(id) {
			v := records.Get(rid[:])
			if v == nil {
				continue // purged since the index was read
			}
			sr, err := splitRecord(v)
			if err != nil {
				return fmt.Errorf("record %s: %w", rid, err)
			}
			if len(sr.ident) == 0 || len(sites) > 0 && !slices.Contains(sites, sr.reference.site()) {
				continue // erased before, or on another site
			}
			erased := append([]byte(nil), v[:len(v)-len(sr.ident)]...)
			if err := records.Put(rid[:], erased); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: erase: %w", err)
	}
	return n, nil
}
