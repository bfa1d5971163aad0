package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// bucketStats holds the counters of the decisions (consent.StatsStore): under
// statsKey, as encodeCounters writes them. A commit adds its records' counters in
// its own transaction.
var bucketStats = []byte("stats")

// keyCounted, in bucketMeta, says that bucketStats counts every record: a store
// written before the counters counts its records at its next open.
var keyCounted = []byte("stats-counted")

// statsKey returns the key of k in bucketStats: site, day, language and
// fingerprint, each ended by a zero byte, which none of them holds, so that a site's
// days are one range of keys, in order.
func statsKey(k consent.StatsKey) []byte {
	return fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s\x00", k.Site, k.Day, k.Language, k.Fingerprint)
}

func parseStatsKey(b []byte) (consent.StatsKey, bool) {
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 5 {
		return consent.StatsKey{}, false
	}
	return consent.StatsKey{Site: parts[0], Day: parts[1], Language: parts[2], Fingerprint: parts[3]}, true
}

// addStats adds counts to the counters in tx.
func addStats(tx *bolt.Tx, counts consent.Counts) error {
	b := tx.Bucket(bucketStats)
	for key, add := range counts {
		k := statsKey(key)
		counters := consent.Counters{}
		if err := decodeCounters(b.Get(k), counters, nil); err != nil {
			return fmt.Errorf("the counters of %q: %w", k, err)
		}
		counters.Add(add)
		if err := b.Put(k, encodeCounters(counters)); err != nil {
			return err
		}
	}
	return nil
}

// encodeCounters returns c as bucketStats keeps it: each name, in order, as its
// length and its bytes, then its count, all numbers unsigned varints.
func encodeCounters(c consent.Counters) []byte {
	var b []byte
	for _, name := range slices.Sorted(maps.Keys(c)) {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendUvarint(b, uint64(c[name]))
	}
	return b
}

// decodeCounters adds the counters encodeCounters wrote in b to into. Names already
// in names are taken from there, and new ones added, if names is not nil.
func decodeCounters(b []byte, into consent.Counters, names map[string]string) error {
	for len(b) > 0 {
		size, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < size {
			return errors.New("cut short")
		}
		raw := b[n : n+int(size)]
		b = b[n+int(size):]
		count, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("cut short")
		}
		b = b[n:]
		name, ok := names[string(raw)]
		if !ok {
			name = string(raw)
			if names != nil {
				names[name] = name
			}
		}
		into[name] += int64(count)
	}
	return nil
}

// Stats returns the counters of sites (all if none) for the days from from up to,
// not including, to.
func (s *Store) Stats(ctx context.Context, sites []string, from, to string) ([]*consent.StatsRow, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: stats: %w", err)
	}
	rows := []*consent.StatsRow{}
	names := map[string]string{} // the rows share a few dozen names
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketStats).Cursor()
		// A site's days are one range of keys; without sites, the whole bucket, which
		// holds a key per site, day, language and banner: thousands in years.
		starts := [][]byte{nil}
		if len(sites) > 0 {
			starts = starts[:0]
			for _, site := range slices.Compact(slices.Sorted(slices.Values(sites))) {
				starts = append(starts, []byte(site+"\x00"))
			}
		}
		for _, prefix := range starts {
			first := prefix // of every site: from its first key, as from is a day of each
			if prefix != nil {
				first = append(bytes.Clone(prefix), from...)
			}
			for k, v := c.Seek(first); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				key, ok := parseStatsKey(k)
				if !ok {
					return fmt.Errorf("counters under %q: not a key of counters", k)
				}
				if (from != "" && key.Day < from) || (to != "" && key.Day >= to) {
					if len(sites) > 0 {
						break // past the site's range
					}
					continue
				}
				row := &consent.StatsRow{Key: key, Counters: consent.Counters{}}
				if err := decodeCounters(v, row.Counters, names); err != nil {
					return fmt.Errorf("the counters of %q: %w", k, err)
				}
				rows = append(rows, row)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: stats: %w", err)
	}
	return rows, nil
}

// countBatch is how many records one read transaction of RebuildStats counts.
var countBatch = 50_000

// RebuildStats counts every record the store holds and replaces the counters with
// what it counted. It counts the records logged before it began in read
// transactions of countBatch records, while appends go on, and those logged since in
// the write transaction that replaces the counters, which appends wait for.
func (s *Store) RebuildStats(ctx context.Context) (int, error) {
	var size int64 // the records with a leaf below it are counted in read transactions
	if err := s.view(func(tx *bolt.Tx) (err error) { size, err = s.treeSize(tx); return err }); err != nil {
		return 0, fmt.Errorf("bolt: rebuild stats: %w", err)
	}
	counts := consent.Counts{}
	n := 0
	err := eachRecord(s.view, countBatch, func(tx *bolt.Tx, k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		counted, err := countStored(tx.Bucket(bucketLog), k, v, counts, func(index int64) bool { return index < size })
		if counted {
			n++
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: rebuild stats: %w", err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		now, err := s.treeSize(tx)
		if err != nil {
			return err
		}
		records, log := tx.Bucket(bucketRecords), tx.Bucket(bucketLog)
		for index := size; index < now; index++ {
			var leaf translog.Leaf
			if err := leaf.UnmarshalBinary(log.Get(leafKey(index))); err != nil {
				return fmt.Errorf("leaf %d: %w", index, err)
			}
			k := leaf.RecordID[:]
			if v := records.Get(k); v != nil { // not purged
				if _, err := countStored(log, k, v, counts, func(int64) bool { return true }); err != nil {
					return err
				}
				n++
			}
		}
		if err := tx.DeleteBucket(bucketStats); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return err
		}
		if _, err := tx.CreateBucket(bucketStats); err != nil {
			return err
		}
		if err := addStats(tx, counts); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyCounted, []byte{1})
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: rebuild stats: %w", err)
	}
	return n, nil
}

// countStored adds the record stored as v under key k to counts if counted says
// that its leaf's index counts, and reports whether it did.
func countStored(log *bolt.Bucket, k, v []byte, counts consent.Counts, counted func(index int64) bool) (bool, error) {
	leaf, sr, err := recordLeaf(log, k, v)
	if err != nil || !counted(sr.index) {
		return false, err
	}
	r := &consent.Record{Site: leaf.Site, RecordedAt: leaf.RecordedAt}
	if err := translog.ParseDecisionPart(sr.decision, r); err != nil {
		return false, fmt.Errorf("record %x: %w", k, err)
	}
	counts.Count(r)
	return true, nil
}
