package bolt

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

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
	snap := &consent.Snapshot{Site: r.Site, Fingerprint: r.Fingerprint, Controller: r.Receipt.Controller,
		Policy: consent.Policy{URL: r.Receipt.PolicyURL, Version: r.PolicyVersion}}
	if err := s.PutSnapshot(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
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
