package bolt

import (
	"bytes"
	"fmt"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// bucketConsents indexes the records by consent id: each key is a consent id and a
// record id, 16 bytes each, with no value, so that the records of one consent id are
// one range of keys. It lives in the file, not in memory, so that a store opens at
// once and in the same memory whatever its size. Consent ids are random: each record
// puts its key in some leaf page of the index, a page more to write in its commit
// (BENCHMARKS.md measures what it costs).
var bucketConsents = []byte("consents")

// keyIndexed, in bucketMeta, says that bucketConsents indexes every record: a store
// written before the index gets it at its next open (buildIndex), and one whose build
// was cut short gets it again.
var keyIndexed = []byte("consents-indexed")

// consentKey returns the key of record recordID of consentID in bucketConsents.
func consentKey(consentID, recordID uuid.UUID) []byte {
	return append(consentID[:len(consentID):len(consentID)], recordID[:]...)
}

// consentRecords returns the ids of the records of consentID in tx, in the order of
// their ids.
func consentRecords(tx *bolt.Tx, consentID uuid.UUID) []uuid.UUID {
	var ids []uuid.UUID
	c := tx.Bucket(bucketConsents).Cursor()
	for k, _ := c.Seek(consentID[:]); bytes.HasPrefix(k, consentID[:]); k, _ = c.Next() {
		ids = append(ids, uuid.UUID(k[len(consentID):]))
	}
	return ids
}

// indexBatch is how many records one transaction of buildIndex indexes: enough to
// fill pages, few enough to keep the transaction's dirty pages in bounded memory.
var indexBatch = 100_000

// buildIndex indexes every record of a store written before bucketConsents, in
// transactions of indexBatch records, then marks it indexed. It returns how many
// records it indexed; a store indexed already costs one read.
func buildIndex(db *bolt.DB) (int, error) {
	var indexed bool
	err := db.View(func(tx *bolt.Tx) error {
		indexed = tx.Bucket(bucketMeta).Get(keyIndexed) != nil
		return nil
	})
	if err != nil || indexed {
		return 0, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketConsents) != nil {
			if err := tx.DeleteBucket(bucketConsents); err != nil {
				return err
			}
		}
		_, err := tx.CreateBucket(bucketConsents)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("consent index: %w", err)
	}
	n := 0
	for after, done := []byte(nil), false; !done; {
		err := db.Update(func(tx *bolt.Tx) error {
			c, consents := tx.Bucket(bucketRecords).Cursor(), tx.Bucket(bucketConsents)
			k, v := seek(c, after, after != nil)
			for i := 0; k != nil && i < indexBatch; i++ {
				sr, err := splitRecord(v)
				if err != nil || len(k) != len(uuid.UUID{}) {
					return fmt.Errorf("record %x: %v", k, err)
				}
				if err := consents.Put(consentKey(sr.consentID, uuid.UUID(k)), nil); err != nil {
					return err
				}
				n++
				after = bytes.Clone(k)
				k, v = c.Next()
			}
			if k == nil {
				done = true
				return tx.Bucket(bucketMeta).Put(keyIndexed, []byte{1})
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("consent index: %w", err)
		}
	}
	return n, nil
}
