package bolt

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// receiptParts are the bytes of a record's receipt besides its proof.
type receiptParts struct {
	decision, leaf, snapshot []byte
}

// newReceipt returns the receipt of the record at index, proved in the tree of cp as
// tx holds it.
func newReceipt(tx *bolt.Tx, index int64, cp *consent.Checkpoint, parts receiptParts) (*consent.Receipt, error) {
	return translog.NewReceipt(tlog.HashReaderFunc(logTx{tx}.ReadHashes), index, cp, parts.decision, parts.leaf, parts.snapshot)
}

// proved returns the record stored as v, with its receipt proved against head.
func (s *Store) proved(tx *bolt.Tx, v []byte, head *consent.Checkpoint) (*consent.Record, error) {
	sr, err := splitRecord(v)
	if err != nil {
		return nil, err
	}
	leafBytes := tx.Bucket(bucketLeaves).Get(indexKey(sr.index))
	var leaf translog.Leaf
	if err := leaf.UnmarshalBinary(leafBytes); err != nil {
		return nil, fmt.Errorf("its leaf %d: %w", sr.index, err)
	}
	r, err := sr.decode(&leaf)
	if err != nil {
		return nil, err
	}
	parts := receiptParts{decision: sr.decision, leaf: leafBytes}
	if snap := s.snapshots.lookup(r.Site, r.Fingerprint, tx.Bucket(bucketSnapshots).Get); snap != nil {
		parts.snapshot = snap.value
	}
	if r.Receipt, err = newReceipt(tx, sr.index, head, parts); err != nil {
		return nil, err
	}
	return r, nil
}

// storedSnapshot is a stored snapshot as records name it: its bytes, which receipts
// carry, and their digest, which leaves hold.
type storedSnapshot struct {
	value  []byte
	digest [32]byte
}

// snapshotCache keeps storedSnapshots per site and fingerprint. Snapshots are never
// overwritten, so an entry never goes stale; a snapshot not stored yet is looked up
// again next time.
type snapshotCache struct {
	mu sync.RWMutex
	m  map[string]*storedSnapshot
}

// lookup returns the stored snapshot of site and fingerprint, nil if there is none,
// reading it with get (the snapshot's stored JSON, nil if none) the first time.
func (sc *snapshotCache) lookup(site, fingerprint string, get func(key []byte) []byte) *storedSnapshot {
	key := snapshotKey(site, fingerprint)
	sc.mu.RLock()
	s, ok := sc.m[string(key)]
	sc.mu.RUnlock()
	if ok {
		return s
	}
	value := get(key)
	if value == nil || !json.Valid(value) {
		return nil
	}
	// Copied: bbolt's bytes live only as long as their transaction.
	s = &storedSnapshot{value: append([]byte(nil), value...), digest: sha256.Sum256(value)}
	sc.mu.Lock()
	sc.m[string(key)] = s
	sc.mu.Unlock()
	return s
}

// snapshotGetter reads snapshots in its own read transaction, for callers outside one.
func (s *Store) snapshotGetter(key []byte) []byte {
	var value []byte
	_ = s.db.View(func(tx *bolt.Tx) error {
		value = append(value, tx.Bucket(bucketSnapshots).Get(key)...)
		return nil
	})
	if len(value) == 0 {
		return nil
	}
	return value
}
