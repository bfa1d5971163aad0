package bolt

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/mixvoip/consentd/store/storetest"
)

// MustChainedFile writes n records through a Store, closing and reopening it half
// way (the chain head must survive), and returns the file and the record ids in
// chain order.
func MustChainedFile(tb testing.TB, n int) (string, []string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "consent.db")
	var ids []string
	for part := range 2 {
		s, err := Open(path)
		if err != nil {
			tb.Fatal(err)
		}
		for range n / 2 {
			r := storetest.NewRecord(tb, uuid.NewString(), storetest.Now())
			storetest.MustAppend(tb, s, r)
			ids = append(ids, r.ID)
		}
		if part == 1 {
			if v, err := s.Verify(context.Background()); err != nil || !v.OK || v.Records != n {
				tb.Fatalf("the live store does not verify: %+v, %v", v, err)
			}
		}
		if err := s.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	return path, ids
}

// MustTamper changes the file directly, as someone with access to the disk could.
func MustTamper(tb testing.TB, path string, f func(tx *bolt.Tx) error) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(f); err != nil {
		tb.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	const n = 20
	key := func(id string) []byte { u := uuid.MustParse(id); return u[:] }
	tests := []struct {
		name    string
		tamper  func(tx *bolt.Tx, ids []string) error
		place   uint64 // where the first broken link is
		problem string
	}{
		{"intact", nil, 0, ""},
		{"one byte of a decision changed", func(tx *bolt.Tx, ids []string) error {
			b := tx.Bucket(bucketRecords)
			v := append([]byte(nil), b.Get(key(ids[6]))...)
			i := strings.Index(string(v), `"marketing":false`)
			v[i+len(`"marketing":`)] = 't' // false -> talse: one byte
			return b.Put(key(ids[6]), v)
		}, 7, "was altered"},
		{"user agent changed", func(tx *bolt.Tx, ids []string) error {
			b := tx.Bucket(bucketRecords)
			v := strings.Replace(string(b.Get(key(ids[3]))), "Mozilla", "Mozillb", 1)
			return b.Put(key(ids[3]), []byte(v))
		}, 4, "identifying part"},
		{"record deleted", func(tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketRecords).Delete(key(ids[12]))
		}, 13, "was deleted"},
		{"record and its chain entry deleted", func(tx *bolt.Tx, ids []string) error {
			if err := tx.Bucket(bucketChain).Delete(seqKey(13)); err != nil {
				return err
			}
			return tx.Bucket(bucketRecords).Delete(key(ids[12]))
		}, 13, "no record at place 13"},
		{"forged record inserted", func(tx *bolt.Tx, ids []string) error {
			r := storetest.NewRecord(t, uuid.NewString(), storetest.Now())
			v, err := encodeRecord(r, uuid.MustParse(r.ConsentID))
			if err != nil {
				return err
			}
			return tx.Bucket(bucketRecords).Put(key(r.ID), v)
		}, 0, "not in the chain"},
		{"records swapped", func(tx *bolt.Tx, ids []string) error {
			b := tx.Bucket(bucketRecords)
			a, c := append([]byte(nil), b.Get(key(ids[1]))...), append([]byte(nil), b.Get(key(ids[2]))...)
			if err := b.Put(key(ids[1]), c); err != nil {
				return err
			}
			return b.Put(key(ids[2]), a)
		}, 2, "claims place 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, ids := MustChainedFile(t, n)
			if tt.tamper != nil {
				MustTamper(t, path, func(tx *bolt.Tx) error { return tt.tamper(tx, ids) })
			}
			v, err := VerifyFile(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.tamper == nil {
				if !v.OK || v.Records != n {
					t.Fatalf("intact file: %+v", v)
				}
				return
			}
			if v.OK || !strings.Contains(v.Problem, tt.problem) || (tt.place != 0 && v.BrokenAt != tt.place) {
				t.Errorf("verification = %+v, want broken at %d with %q", v, tt.place, tt.problem)
			}
		})
	}
}
