package bolt

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// Erase drops the identifying part of each record of consentID on sites (all if
// empty). The record's leaf keeps that part's salted digest, so the log still
// verifies without it.
func (s *Store) Erase(ctx context.Context, consentID string, sites []string) (int, error) {
	id, err := uuid.Parse(consentID)
	if err != nil {
		return 0, fmt.Errorf("bolt: erase: %w", consent.Errorf(consent.EInvalid, "consent id %q is not a UUID", consentID))
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: erase: %w", err)
	}
	n := 0
	ids := s.recordIDs(id)
	err = s.update(func(tx *bolt.Tx) error {
		records, log := tx.Bucket(bucketRecords), tx.Bucket(bucketLog)
		for _, rid := range ids(tx) {
			v := records.Get(rid[:])
			if v == nil {
				continue // purged since the index in memory was read
			}
			sr, err := splitRecord(v)
			if err != nil {
				return fmt.Errorf("record %s: %w", rid, err)
			}
			if len(sr.identifying) == 0 {
				continue // erased before
			}
			if len(sites) > 0 {
				var leaf translog.Leaf
				if err := leaf.UnmarshalBinary(log.Get(leafKey(sr.index))); err != nil {
					return fmt.Errorf("record %s: its leaf: %w", rid, err)
				}
				if !slices.Contains(sites, leaf.Site) {
					continue
				}
			}
			erased := append([]byte(nil), v[:len(v)-len(sr.identifying)]...)
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
