package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

// Records scans the records in key order. Keys are UUIDv7, whose first 48 bits are
// the millisecond the id was made, just before the record's time was taken: a scan
// from f.From starts a second earlier and lets Match decide. One call is one short
// read transaction; an export pages through many.
func (s *Store) Records(ctx context.Context, f consent.Filter, after string, limit int) ([]*consent.Record, error) {
	var start []byte
	if after != "" {
		id, err := uuid.Parse(after)
		if err != nil {
			return nil, fmt.Errorf("bolt: records: %w", consent.Errorf(consent.EInvalid, "cursor %q is not a record id", after))
		}
		start = id[:]
	} else if !f.From.IsZero() {
		start = timeKey(f.From.Add(-time.Second))
	}
	var end []byte
	if !f.To.IsZero() {
		end = timeKey(f.To.Add(time.Second))
	}
	out := []*consent.Record{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		k, v := seek(c, start, after != "")
		for n := 0; k != nil && len(out) < limit; k, v = c.Next() {
			if end != nil && bytes.Compare(k, end) >= 0 {
				break
			}
			if n++; n%10000 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			sr, err := splitRecord(v)
			if err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			r, err := s.decode(tx, sr)
			if err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			if f.Match(r) {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: records: %w", err)
	}
	return out, nil
}

// timeKey is the smallest UUIDv7 key of the millisecond t.
func timeKey(t time.Time) []byte {
	var k [16]byte
	ms := uint64(max(t.UnixMilli(), 0))
	binary.BigEndian.PutUint64(k[:8], ms<<16)
	return k[:]
}
