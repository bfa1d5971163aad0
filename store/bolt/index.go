package bolt

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// The records are indexed by consent id in two levels, so that a commit writes its
// index entries where it writes its records, at the end of the file, and a store
// opens at once and in the same memory at any size:
//
//   - bucketRecent holds the entries of the records committed since the last merge,
//     keyed by record id (time-ordered, so a commit appends them) with the consent
//     id as value. Memory holds the same entries by consent id (recentIndex), read
//     from the bucket when the store opens: at most a few merges' worth.
//   - bucketConsents holds the others, each key a consent id and a record id, 16
//     bytes each, so that the records of one consent id are one range of keys.
//     Consent ids are random: a merge (mergeIndex) moves the recent entries there
//     once they are mergeAt or more, sorted by key, in transactions of a stretch of
//     keys each, which write each leaf page of the index once for all the entries
//     it gets, where commits would write a page per record.
var (
	bucketConsents = []byte("consents")
	bucketRecent   = []byte("consents-recent")
)

// keyIndexed, in bucketMeta, says that the index holds every record: a store written
// before the index gets it at its next open (buildIndex), and one whose build was
// cut short gets it again.
var keyIndexed = []byte("consents-indexed")

// consentKey returns the key of record recordID of consentID in bucketConsents.
func consentKey(consentID, recordID uuid.UUID) []byte {
	return append(consentID[:len(consentID):len(consentID)], recordID[:]...)
}

// DefaultMergeAt is how many entries in bucketRecent start a merge unless MergeAt
// says: 16,384 entries hold about 1.5 MiB of memory. With a million records a merge
// of them writes a leaf page of the index for every one and a half entries; with
// fifty million, about one per entry, but off the commits' path.
const DefaultMergeAt = 1 << 14

// recentIndex is bucketRecent in memory, by consent id.
type recentIndex struct {
	mu        sync.RWMutex
	byConsent map[uuid.UUID][]uuid.UUID
	n         int
}

func newRecentIndex() *recentIndex {
	return &recentIndex{byConsent: map[uuid.UUID][]uuid.UUID{}}
}

func (ix *recentIndex) add(consentID, recordID uuid.UUID) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.byConsent[consentID] = append(ix.byConsent[consentID], recordID)
	ix.n++
}

func (ix *recentIndex) remove(consentID, recordID uuid.UUID) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ids := ix.byConsent[consentID]
	i := slices.Index(ids, recordID)
	if i < 0 {
		return
	}
	if ids = slices.Delete(ids, i, i+1); len(ids) == 0 {
		delete(ix.byConsent, consentID)
	} else {
		ix.byConsent[consentID] = ids
	}
	ix.n--
}

func (ix *recentIndex) records(consentID uuid.UUID) []uuid.UUID {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return slices.Clone(ix.byConsent[consentID])
}

func (ix *recentIndex) size() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.n
}

// readRecent fills the memory index from bucketRecent in tx.
func (ix *recentIndex) read(tx *bolt.Tx) error {
	return tx.Bucket(bucketRecent).ForEach(func(k, v []byte) error {
		if len(k) != len(uuid.UUID{}) || len(v) != len(uuid.UUID{}) {
			return fmt.Errorf("index entry %x: not a record id and a consent id", k)
		}
		ix.add(uuid.UUID(v), uuid.UUID(k))
		return nil
	})
}

// recordIDs returns a function that lists, in a transaction, the ids of the records
// of consentID in the order of their ids. It reads the memory index first: an entry a
// merge moved after that is in bucketConsents for any transaction begun later.
func (s *Store) recordIDs(consentID uuid.UUID) func(tx *bolt.Tx) []uuid.UUID {
	recent := s.recent.records(consentID)
	return func(tx *bolt.Tx) []uuid.UUID {
		ids := recent
		c := tx.Bucket(bucketConsents).Cursor()
		for k, _ := c.Seek(consentID[:]); bytes.HasPrefix(k, consentID[:]); k, _ = c.Next() {
			ids = append(ids, uuid.UUID(k[len(consentID):]))
		}
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
		return slices.Compact(ids)
	}
}

// mergeChunk is how many entries one transaction of a merge moves. The entries are
// moved in the order of their keys in bucketConsents, so that each transaction
// writes its own stretch of leaf pages: the chunks write what one transaction of the
// whole merge would, and commits of records wait for a chunk at most, not for the
// merge.
const mergeChunk = 2048

// mergeIndex moves the entries of bucketRecent to bucketConsents, in order of their
// keys there, a chunk per transaction, then drops them from bucketRecent and from
// memory. Until then an entry is in both: lookups merge the two, verification
// counts it once, and a merge cut short is done again by the next one.
func (s *Store) mergeIndex() error {
	type entry struct{ consentID, recordID uuid.UUID }
	var moving []entry
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecent).ForEach(func(k, v []byte) error {
			moving = append(moving, entry{uuid.UUID(v), uuid.UUID(k)})
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("bolt: merge the consent index: %w", err)
	}
	slices.SortFunc(moving, func(a, b entry) int {
		return cmp.Or(bytes.Compare(a.consentID[:], b.consentID[:]), bytes.Compare(a.recordID[:], b.recordID[:]))
	})
	for chunk := range slices.Chunk(moving, mergeChunk) {
		err := s.update(func(tx *bolt.Tx) error {
			recent, consents := tx.Bucket(bucketRecent), tx.Bucket(bucketConsents)
			for _, e := range chunk {
				// A purge since has removed the record and its entry: not again.
				if recent.Get(e.recordID[:]) == nil {
					continue
				}
				if err := consents.Put(consentKey(e.consentID, e.recordID), nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bolt: merge the consent index: %w", err)
		}
	}
	// In the order of bucketRecent's keys, which are record ids: its pages once each.
	slices.SortFunc(moving, func(a, b entry) int { return bytes.Compare(a.recordID[:], b.recordID[:]) })
	err = s.update(func(tx *bolt.Tx) error {
		recent := tx.Bucket(bucketRecent)
		for _, e := range moving {
			if err := recent.Delete(e.recordID[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: merge the consent index: %w", err)
	}
	for _, e := range moving {
		s.recent.remove(e.consentID, e.recordID)
	}
	return nil
}

// mergeWhileDue merges the index each time wake says a commit left mergeAt entries
// or more in bucketRecent, until done is closed. A merge that fails leaves
// the entries where they are, in memory too: the next one tries again.
func (s *Store) mergeWhileDue(wake <-chan struct{}, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-wake:
		}
		for s.recent.size() >= s.mergeAt {
			if err := s.mergeIndex(); err != nil {
				break
			}
		}
	}
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
		indexed = tx.Bucket(bucketMeta).Get(keyIndexed) != nil && tx.Bucket(bucketRecent) != nil
		return nil
	})
	if err != nil || indexed {
		return 0, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketConsents, bucketRecent} {
			if tx.Bucket(b) != nil {
				if err := tx.DeleteBucket(b); err != nil {
					return err
				}
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("consent index: %w", err)
	}
	n := 0
	err = eachRecord(db.Update, indexBatch, func(tx *bolt.Tx, k, v []byte) error {
		sr, err := splitRecord(v)
		if err != nil || len(k) != len(uuid.UUID{}) {
			return fmt.Errorf("record %x: %v", k, err)
		}
		n++
		return tx.Bucket(bucketConsents).Put(consentKey(sr.consentID, uuid.UUID(k)), nil)
	})
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyIndexed, []byte{1}) })
	}
	if err != nil {
		return n, fmt.Errorf("consent index: %w", err)
	}
	return n, nil
}

// eachRecord calls fn with every record's key and value, in key order, batch records
// to a transaction that run opens (a view or an update): short transactions, so that
// a store serving meanwhile goes on between them.
func eachRecord(run func(func(*bolt.Tx) error) error, batch int, fn func(tx *bolt.Tx, k, v []byte) error) error {
	for after, done := []byte(nil), false; !done; {
		err := run(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketRecords).Cursor()
			k, v := seek(c, after, after != nil)
			for i := 0; k != nil && i < batch; i++ {
				if err := fn(tx, k, v); err != nil {
					return err
				}
				after = bytes.Clone(k)
				k, v = c.Next()
			}
			done = k == nil
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// RebuildIndex builds the consent index of the store file at path, which no process
// may have open, again from its records, and returns how many records it indexed:
// for an index that verification finds wrong.
func RebuildIndex(path string) (int, error) {
	db, err := openStoreFile(path)
	if err != nil {
		return 0, fmt.Errorf("bolt: rebuild the consent index of %s: %w", path, err)
	}
	defer db.Close()
	var n int
	err = guard(func() error {
		err := db.Update(func(tx *bolt.Tx) error {
			switch fresh, err := isNew(tx); {
			case err != nil:
				return err
			case fresh:
				return errors.New("not a consentd store: it holds nothing")
			}
			return tx.Bucket(bucketMeta).Delete(keyIndexed)
		})
		if err == nil {
			n, err = buildIndex(db)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: rebuild the consent index of %s: %w", path, err)
	}
	return n, db.Close()
}
