package bolt

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

// A receipt repeats its record, plus the controller and the policy URL of the
// snapshot the record names, and was most of a stored record: 2,152 bytes per record
// at a million. A record whose receipt can be rebuilt exactly from the record and
// its snapshot stores only the receipt's key id and signature, its seal; any other
// receipt is stored whole.
type seal struct {
	KeyID     string `json:"kid"`
	Signature string `json:"signature"`
}

// storedSnapshot is what a record takes from the stored snapshot of its site and
// fingerprint: the receipt's view of it (key, controller, policy), and the digest of
// the snapshot as stored, which the record's chain link covers.
type storedSnapshot struct {
	site   *consent.Site
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
	if value == nil {
		return nil
	}
	var snap consent.Snapshot
	if json.Unmarshal(value, &snap) != nil {
		return nil
	}
	s = &storedSnapshot{
		site:   &consent.Site{Key: snap.Site, Controller: snap.Controller, Policy: snap.Policy},
		digest: sha256.Sum256(value),
	}
	sc.mu.Lock()
	sc.m[string(key)] = s
	sc.mu.Unlock()
	return s
}

// rebuild returns the receipt of r under site, signed with the seal.
func rebuild(site *consent.Site, r *consent.Record, s seal) *consent.Receipt {
	receipt := consent.NewReceipt(site, r)
	receipt.KeyID, receipt.Signature = s.KeyID, s.Signature
	return receipt
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

// sealed returns r's receipt as it is stored: its seal when snap rebuilds it
// exactly, else the whole receipt.
func sealed(r *consent.Record, snap *storedSnapshot) any {
	if r.Receipt == nil {
		return nil
	}
	if snap == nil {
		return r.Receipt
	}
	s := seal{KeyID: r.Receipt.KeyID, Signature: r.Receipt.Signature}
	if !reflect.DeepEqual(rebuild(snap.site, r, s), r.Receipt) {
		return r.Receipt
	}
	return &s
}

// decode returns the record sr holds, its receipt rebuilt if it was sealed.
func (s *Store) decode(tx *bolt.Tx, sr storedRecord) (*consent.Record, error) {
	r, err := sr.decodeSealed()
	if err != nil || r.Receipt == nil || r.Receipt.Version != "" {
		return r, err
	}
	snap := s.snapshots.lookup(r.Site, r.Fingerprint, tx.Bucket(bucketSnapshots).Get)
	if snap == nil {
		return nil, fmt.Errorf("the receipt of record %s is sealed, but the snapshot %s of %s is missing", r.ID, r.Fingerprint, r.Site)
	}
	r.Receipt = rebuild(snap.site, r, seal{KeyID: r.Receipt.KeyID, Signature: r.Receipt.Signature})
	return r, nil
}
