package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

// bucketSnapshots maps site + "\x00" + fingerprint to the snapshot as JSON.
var bucketSnapshots = []byte("snapshots")

func snapshotKey(site, fingerprint string) []byte {
	return []byte(site + "\x00" + fingerprint)
}

// PutSnapshot stores s unless its site and fingerprint have a snapshot already. It
// writes outside the record writer: snapshots come once per configuration, not per
// visitor.
func (s *Store) PutSnapshot(ctx context.Context, snap *consent.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: put snapshot: %w", err)
	}
	value, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("bolt: put snapshot: %w", err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		key := snapshotKey(snap.Site, snap.Fingerprint)
		if b.Get(key) != nil {
			return nil
		}
		return b.Put(key, value)
	})
	if err != nil {
		return fmt.Errorf("bolt: put snapshot %s %s: %w", snap.Site, snap.Fingerprint, err)
	}
	return nil
}

// Snapshot returns the snapshot of site's fingerprint.
func (s *Store) Snapshot(ctx context.Context, site, fingerprint string) (*consent.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: snapshot: %w", err)
	}
	snap := new(consent.Snapshot)
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSnapshots).Get(snapshotKey(site, fingerprint))
		if v == nil {
			return consent.Errorf(consent.ENotFound, "no snapshot of %s for site %s", fingerprint, site)
		}
		return json.Unmarshal(v, snap)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: snapshot: %w", err)
	}
	return snap, nil
}
