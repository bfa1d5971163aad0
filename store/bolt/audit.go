package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

// bucketAudit maps an audit entry's id (16 bytes, UUIDv7) to the entry as JSON.
var bucketAudit = []byte("audit")

// AppendAudit stores entries in one transaction: the calls of one token are few, and
// each must be on record before it is answered; refused calls come aggregated.
func (s *Store) AppendAudit(ctx context.Context, entries ...*consent.AuditEntry) error {
	keys := make([][16]byte, len(entries))
	values := make([][]byte, len(entries))
	for i, e := range entries {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return fmt.Errorf("bolt: append audit: %w", consent.Errorf(consent.EInvalid, "audit id %q is not a UUID", e.ID))
		}
		if values[i], err = json.Marshal(e); err != nil {
			return fmt.Errorf("bolt: append audit: %w", err)
		}
		keys[i] = id
	}
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		b.FillPercent = 1.0 // time-ordered keys
		for i := range keys {
			if err := b.Put(keys[i][:], values[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: append audit: %w", err)
	}
	return nil
}

// Audit returns up to limit entries after the entry after, oldest first.
func (s *Store) Audit(ctx context.Context, after string, limit int) ([]*consent.AuditEntry, error) {
	var start []byte
	if after != "" {
		id, err := uuid.Parse(after)
		if err != nil {
			return nil, fmt.Errorf("bolt: audit: %w", consent.Errorf(consent.EInvalid, "after %q is not an audit id", after))
		}
		start = id[:]
	}
	out := []*consent.AuditEntry{}
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := seek(c, start, true); k != nil && len(out) < limit; k, v = c.Next() {
			e := new(consent.AuditEntry)
			if err := json.Unmarshal(v, e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: audit: %w", err)
	}
	return out, nil
}

// PurgeAudit removes the entries made before before. Entry ids are UUIDv7, ordered by
// the time they were made, so the entries to remove are the first ones, and each
// transaction takes a bounded number of them: the writer of records waits on none
// for long.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	end, ok := consent.AuditIDBound(before)
	if !ok {
		return 0, nil
	}
	removed := 0
	for {
		if err := ctx.Err(); err != nil {
			return removed, fmt.Errorf("bolt: purge audit: %w", err)
		}
		n := 0
		err := s.update(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketAudit).Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k, end[:]) < 0 && n < purgeAuditBatch; k, _ = c.First() {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return removed, fmt.Errorf("bolt: purge audit: %w", err)
		}
		removed += n
		if n < purgeAuditBatch {
			return removed, nil
		}
	}
}

// purgeAuditBatch is how many audit entries one transaction of PurgeAudit removes.
const purgeAuditBatch = 10000
