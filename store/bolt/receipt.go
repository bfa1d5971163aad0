package bolt

import (
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

// storedCore is how a record's decision part is stored: without the identifying
// fields, which go to the identifying part, and with its receipt sealed when it can
// be rebuilt. The outer fields hide the record's own of the same names.
type storedCore struct {
	*consent.Record
	URL       string `json:"url,omitempty"`
	IPPrefix  string `json:"ip_prefix,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Receipt   any    `json:"receipt,omitempty"` // *seal or *consent.Receipt
}

// receiptSites caches per site and fingerprint what a rebuilt receipt takes from the
// snapshot. Snapshots are never overwritten, so an entry never goes stale; a snapshot
// not stored yet is looked up again next time.
type receiptSites struct {
	mu sync.RWMutex
	m  map[string]*consent.Site
}

// site returns the receipt's view of the snapshot of site and fingerprint, reading it
// with get (the snapshot's stored JSON, nil if none) the first time.
func (rs *receiptSites) site(site, fingerprint string, get func(key []byte) []byte) *consent.Site {
	key := snapshotKey(site, fingerprint)
	rs.mu.RLock()
	s, ok := rs.m[string(key)]
	rs.mu.RUnlock()
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
	s = &consent.Site{Key: snap.Site, Controller: snap.Controller, Policy: snap.Policy}
	rs.mu.Lock()
	rs.m[string(key)] = s
	rs.mu.Unlock()
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

// sealed returns r's receipt as it is stored: its seal when the snapshot rebuilds it
// exactly, else the whole receipt.
func (s *Store) sealed(r *consent.Record) any {
	if r.Receipt == nil {
		return nil
	}
	site := s.receiptSites.site(r.Site, r.Fingerprint, s.snapshotGetter)
	if site == nil {
		return r.Receipt
	}
	sealed := seal{KeyID: r.Receipt.KeyID, Signature: r.Receipt.Signature}
	if !reflect.DeepEqual(rebuild(site, r, sealed), r.Receipt) {
		return r.Receipt
	}
	return &sealed
}

// decode returns the record sr holds, its receipt rebuilt if it was sealed.
func (s *Store) decode(tx *bolt.Tx, sr storedRecord) (*consent.Record, error) {
	r, err := sr.decodeSealed()
	if err != nil || r.Receipt == nil || r.Receipt.Version != "" {
		return r, err
	}
	site := s.receiptSites.site(r.Site, r.Fingerprint, tx.Bucket(bucketSnapshots).Get)
	if site == nil {
		return nil, fmt.Errorf("the receipt of record %s is sealed, but the snapshot %s of %s is missing", r.ID, r.Fingerprint, r.Site)
	}
	r.Receipt = rebuild(site, r, seal{KeyID: r.Receipt.KeyID, Signature: r.Receipt.Signature})
	return r, nil
}
