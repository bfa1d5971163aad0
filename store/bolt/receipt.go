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

// receiptParts are the parts of a record's receipt besides its proof.
type receiptParts struct {
	decision, leaf []byte
	snapshot       string
}

// proved returns the record stored as v, with its receipt proved against head.
func (s *Store) proved(tx *bolt.Tx, v []byte, head *consent.Checkpoint) (*consent.Record, error) {
	sr, err := splitRecord(v)
	if err != nil {
		return nil, err
	}
	// The header's consent id found the record; a record moved under another visitor's
	// id is not theirs to see.
	if !sameConsent(sr) {
		return nil, fmt.Errorf("the record is filed under another consent id than its decision's: the store was altered (consentd verify tells more)")
	}
	leafBytes := tx.Bucket(bucketLog).Get(leafKey(sr.index))
	var leaf translog.Leaf
	if err := leaf.UnmarshalBinary(leafBytes); err != nil {
		return nil, fmt.Errorf("its leaf %d: %w", sr.index, err)
	}
	r, err := sr.decode(&leaf)
	if err != nil {
		return nil, err
	}
	// The snapshot the leaf names: one stored after the record was not shown to it.
	var snapshot string
	if snap := s.snapshots.lookup(r.Site, r.Fingerprint, tx.Bucket(bucketSnapshots).Get); snap != nil && snap.digest == leaf.Snapshot {
		snapshot = snap.text
	}
	p, err := translog.Prove(tlog.HashReaderFunc(logTx{tx}.ReadHashes), sr.index, head)
	if err != nil {
		return nil, err
	}
	if r.Receipt, err = translog.NewReceipt(p, sr.decision, leafBytes, snapshot); err != nil {
		return nil, err
	}
	return r, nil
}

// storedSnapshot is a stored snapshot as records name it: its bytes, which receipts
// carry (as one string, which they share), and their digest, which leaves hold.
type storedSnapshot struct {
	text   string
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
	s = &storedSnapshot{text: string(value), digest: sha256.Sum256(value)}
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
