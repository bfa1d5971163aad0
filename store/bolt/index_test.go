package bolt

import (
	"context"
	"testing"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

// TestIndexBuiltForOlderStore: a store written before the consent index, or whose
// build of it was cut short, gets the whole index when it opens, and every visitor
// finds their records; a purge takes the keys of the records it removes.
func TestIndexBuiltForOlderStore(t *testing.T) {
	cases := map[string]func(tx *bolt.Tx, consentOf map[string]uuid.UUID) error{
		"written before the index and the counters": func(tx *bolt.Tx, _ map[string]uuid.UUID) error {
			for _, b := range derived {
				if err := tx.DeleteBucket(b); err != nil {
					return err
				}
			}
			for _, k := range [][]byte{keyIndexed, keyCounted} {
				if err := tx.Bucket(bucketMeta).Delete(k); err != nil {
					return err
				}
			}
			return nil
		},
		"its build cut short": func(tx *bolt.Tx, consentOf map[string]uuid.UUID) error {
			n := 0
			for id, consentID := range consentOf {
				if n++; n%2 == 0 {
					if err := tx.Bucket(bucketConsents).Delete(consentKey(consentID, uuid.MustParse(id))); err != nil {
						return err
					}
				}
			}
			return tx.Bucket(bucketMeta).Delete(keyIndexed)
		},
	}
	for name, older := range cases {
		t.Run(name, func(t *testing.T) {
			path, ids := MustLoggedFile(t, 25)
			consentOf := map[string]uuid.UUID{}
			MustTamper(t, path, func(tx *bolt.Tx) error {
				for _, id := range ids {
					sr, err := splitRecord(tx.Bucket(bucketRecords).Get(recordKey(id)))
					if err != nil {
						return err
					}
					consentOf[id] = sr.consentID
				}
				return older(tx, consentOf)
			})
			defer func(n int) { indexBatch = n }(indexBatch)
			indexBatch = 10 // three transactions

			s := MustOpen(t, path)
			for _, id := range ids {
				records, err := s.RecordsByConsent(context.Background(), consentOf[id].String())
				if err != nil || len(records) != 1 || records[0].ID != id {
					t.Fatalf("the records of consent %s: %d, %v; want record %s", consentOf[id], len(records), err, id)
				}
			}
			if got := indexKeys(t, s); got != len(ids) {
				t.Errorf("the index holds %d keys, want one for each of the %d records", got, len(ids))
			}
			rows, err := s.Stats(context.Background(), nil, "", "")
			var total int64
			for _, row := range rows {
				total += row.Counters[string(consent.ActionCustom)]
			}
			if err != nil || total != int64(len(ids)) {
				t.Errorf("the counters count %d decisions (%v), want the %d records", total, err, len(ids))
			}
		})
	}
}

func indexKeys(tb testing.TB, s *Store) int {
	tb.Helper()
	var n int
	err := s.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketConsents).Stats().KeyN
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
