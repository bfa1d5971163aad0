package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

// bucketAudit maps an audit entry's id (16 bytes, UUIDv7) to the entry as JSON.
var bucketAudit = []byte("audit")

// AppendAudit stores e in a transaction of its own: DPO calls are few, and each one
// must be on record before it is answered.
func (s *Store) AppendAudit(ctx context.Context, e *consent.AuditEntry) error {
	id, err := uuid.Parse(e.ID)
	if err != nil {
		return fmt.Errorf("bolt: append audit: %w", consent.Errorf(consent.EInvalid, "audit id %q is not a UUID", e.ID))
	}
	value, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("bolt: append audit: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		b.FillPercent = 1.0 // time-ordered keys
		return b.Put(id[:], value)
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
	err := s.db.View(func(tx *bolt.Tx) error {
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

// seek positions c at the first key at or after start, or at the first key if start
// is nil; with past set, a key equal to start (the last of the previous page) is
// skipped.
func seek(c *bolt.Cursor, start []byte, past bool) (k, v []byte) {
	if start == nil {
		return c.First()
	}
	k, v = c.Seek(start)
	if past && k != nil && bytes.Equal(k, start) {
		return c.Next()
	}
	return k, v
}
