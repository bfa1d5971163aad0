package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// Records returns up to limit records f selects after the record after, decoded,
// without receipts.
func (s *Store) Records(ctx context.Context, f consent.Filter, after string, limit int) ([]*consent.Record, error) {
	out := []*consent.Record{}
	err := s.scan(ctx, f, after, limit, func(_ []byte, sr storedRecord, leaf *translog.Leaf) error {
		r, err := sr.decode(leaf)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: records: %w", err)
	}
	return out, nil
}

// AppendExport appends the records Records would return in format, written from
// their stored parts (translog.AppendRecord) without decoding them into records.
func (s *Store) AppendExport(ctx context.Context, f consent.Filter, after string, limit int, format consent.ExportFormat, dst []byte) ([]byte, int, string, error) {
	n, last := 0, uuid.UUID{}
	err := s.scan(ctx, f, after, limit, func(key []byte, sr storedRecord, leaf *translog.Leaf) error {
		var err error
		if dst, err = translog.AppendRecord(dst, format, leaf, sr.index, sr.decision, sr.identifying); err != nil {
			return err
		}
		if len(key) != 16 {
			return fmt.Errorf("a record key of %d bytes", len(key))
		}
		n, last = n+1, uuid.UUID(key)
		return nil
	})
	if err != nil {
		return dst, 0, "", fmt.Errorf("bolt: export: %w", err)
	}
	if n == 0 {
		return dst, 0, "", nil
	}
	return dst, n, last.String(), nil
}

// scan calls fn in one read transaction with up to limit records f selects, after
// the record after, in key order. Keys are UUIDv7, whose first 48 bits are the
// millisecond the id was made, just before the record's time was taken: a scan from
// f.From starts a second earlier and lets the filter decide. Only what the filter
// needs of a record is decoded to select it.
func (s *Store) scan(ctx context.Context, f consent.Filter, after string, limit int, fn func(key []byte, sr storedRecord, leaf *translog.Leaf) error) error {
	var start []byte
	if after != "" {
		id, err := uuid.Parse(after)
		if err != nil {
			return consent.Errorf(consent.EInvalid, "cursor %q is not a record id", after)
		}
		start = id[:]
	} else if !f.From.IsZero() {
		start = timeKey(f.From.Add(-time.Second))
	}
	var end []byte
	if !f.To.IsZero() {
		end = timeKey(f.To.Add(time.Second))
	}
	selects := selector(f)
	return s.view(func(tx *bolt.Tx) error {
		c, log := tx.Bucket(bucketRecords).Cursor(), tx.Bucket(bucketLog)
		k, v := seek(c, start, after != "")
		for n, found := 0, 0; k != nil && found < limit; k, v = c.Next() {
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
			var leaf translog.Leaf
			if err := leaf.UnmarshalBinary(log.Get(leafKey(sr.index))); err != nil {
				return fmt.Errorf("record %x: its leaf %d: %w", k, sr.index, err)
			}
			if ok, err := selects(sr, &leaf); err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			} else if !ok {
				continue
			}
			if err := fn(k, sr, &leaf); err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			found++
		}
		return nil
	})
}

// selector returns what tells whether f selects a stored record. Site and time come
// from the record's leaf; the decision part is decoded only when f asks about more
// than those.
func selector(f consent.Filter) func(sr storedRecord, leaf *translog.Leaf) (bool, error) {
	byLeaf := consent.Filter{Sites: f.Sites, From: f.From, To: f.To}
	decode := !reflect.DeepEqual(f, byLeaf)
	return func(sr storedRecord, leaf *translog.Leaf) (bool, error) {
		r := &consent.Record{Site: leaf.Site, RecordedAt: leaf.RecordedAt}
		if ok := byLeaf.Match(r); !ok || !decode {
			return ok, nil
		}
		r, err := sr.decode(leaf)
		if err != nil {
			return false, err
		}
		return f.Match(r), nil
	}
}

// timeKey is the smallest UUIDv7 key of the millisecond t.
func timeKey(t time.Time) []byte {
	var k [16]byte
	ms := uint64(max(t.UnixMilli(), 0))
	binary.BigEndian.PutUint64(k[:8], ms<<16)
	return k[:]
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
