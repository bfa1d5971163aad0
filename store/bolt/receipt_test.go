package bolt

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/store/storetest"
)

// TestSealedReceipt: a receipt that its snapshot rebuilds is stored as its signature
// alone, not as a second copy of the record.
func TestSealedReceipt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "consent.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r := storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now())
	storetest.MustPutSnapshot(t, s, r)
	storetest.MustAppend(t, s, r)
	storetest.MustEqualRecord(t, storetest.MustRecordsByConsent(t, s, r.ConsentID)[0], r)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	MustTamper(t, path, func(tx *bolt.Tx) error {
		_, v := tx.Bucket(bucketRecords).Cursor().First()
		if strings.Contains(string(v), r.Receipt.Controller.Address) || !strings.Contains(string(v), r.Receipt.Signature) {
			t.Errorf("the stored record holds the whole receipt (%d bytes): %s", len(v), v)
		}
		return nil
	})
}

// TestVerifySnapshots: the snapshot of what a visitor was shown is part of the proof:
// changing or removing it after its records shows in verification.
func TestVerifySnapshots(t *testing.T) {
	keys := mustKeys(t)
	tests := []struct {
		name   string
		tamper func(b *bolt.Bucket, key []byte) error
	}{
		{"intact", nil},
		{"a disclosure changed", func(b *bolt.Bucket, key []byte) error {
			return b.Put(key, []byte(strings.Replace(string(b.Get(key)), "privacy", "privacz", 1)))
		}},
		{"removed", func(b *bolt.Bucket, key []byte) error { return b.Delete(key) }},
		{"moved, a forged one in its place", func(b *bolt.Bucket, key []byte) error {
			original := bytes.Clone(b.Get(key))
			if err := b.Put([]byte("zzz"), original); err != nil {
				return err
			}
			return b.Put(key, []byte(strings.Replace(string(original), "privacy", "privacz", 1)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "consent.db")
			s, err := Open(path, Checkpoints(keys, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			var snap *consent.Snapshot
			for range 5 {
				r := storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now())
				if snap == nil {
					snap = storetest.MustPutSnapshot(t, s, r)
				}
				storetest.MustAppend(t, s, r)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if tt.tamper != nil {
				MustTamper(t, path, func(tx *bolt.Tx) error {
					return tt.tamper(tx.Bucket(bucketSnapshots), snapshotKey(snap.Site, snap.Fingerprint))
				})
			}
			v, err := VerifyFile(context.Background(), path, keys)
			switch {
			case err != nil:
				t.Fatal(err)
			case tt.tamper == nil && !v.OK:
				t.Errorf("intact: %+v", v)
			case tt.tamper != nil && (v.OK || !strings.Contains(v.Problem, "snapshot")):
				t.Errorf("verification = %+v, want broken for the snapshot", v)
			}
		})
	}
}
