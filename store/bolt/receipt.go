package bolt

import (
	"fmt"

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
	if !(&translog.StoredRecord{ConsentID: sr.consentID, Decision: sr.decision}).SameConsent() {
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
	inTx := func(site, fingerprint string) ([]byte, error) {
		return tx.Bucket(bucketSnapshots).Get(snapshotKey(site, fingerprint)), nil
	}
	if snap, _ := s.snapshots.Lookup(r.Site, r.Fingerprint, inTx); snap != nil && snap.Digest == leaf.Snapshot {
		snapshot = snap.Text
	}
	p, err := translog.Prove(tlog.HashReaderFunc(logTx{tx: tx}.ReadHashes), sr.index, head)
	if err != nil {
		return nil, err
	}
	if r.Receipt, err = translog.NewReceipt(p, sr.decision, leafBytes, snapshot); err != nil {
		return nil, err
	}
	return r, nil
}

// snapshotGetter reads snapshots in its own read transaction, for callers outside one.
func (s *Store) snapshotGetter(site, fingerprint string) ([]byte, error) {
	var value []byte
	err := s.view(func(tx *bolt.Tx) error {
		// Copied: bbolt's bytes live only as long as their transaction.
		value = append(value, tx.Bucket(bucketSnapshots).Get(snapshotKey(site, fingerprint))...)
		return nil
	})
	if len(value) == 0 {
		return nil, err
	}
	return value, err
}
