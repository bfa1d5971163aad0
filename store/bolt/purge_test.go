package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/storetest"
)

// The chain of mustPurgedFile: ten old records of the long-kept site, ten old ones of
// the short-kept site, then five new ones of the short-kept site. A purge of the
// short-kept site leaves tombstones at places 11 to 20, between live records.
const (
	longKept, shortKept = "long.example", "short.example"
	purgedFrom          = 11
	purgedTo            = 20
	chainLength         = 25
)

func mustPurgedFile(tb testing.TB, signer consent.CheckpointSigner) (path string, ids []string, cutoff time.Time) {
	tb.Helper()
	path = filepath.Join(tb.TempDir(), "consent.db")
	s, err := Open(path, Checkpoints(signer, time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	now := storetest.Now()
	cutoff = now.Add(-24 * time.Hour)
	for i := range chainLength {
		site, at := longKept, now.Add(-48*time.Hour)
		if i >= purgedFrom-1 {
			site = shortKept
		}
		if i >= purgedTo {
			at = now
		}
		r := storetest.NewRecord(tb, uuid.NewString(), at)
		r.ID, r.Site = storetest.IDAt(tb, at), site
		storetest.MustAppend(tb, s, r)
		ids = append(ids, r.ID)
	}
	if n, err := s.Purge(context.Background(), map[string]time.Time{shortKept: cutoff}); err != nil || n != purgedTo-purgedFrom+1 {
		tb.Fatalf("Purge = %d, %v", n, err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return path, ids, cutoff
}

// TestPurgeTamper: after a purge, verification still catches a record deleted and
// passed off as purged, a purge moved, a tombstone deleted or changed.
func TestPurgeTamper(t *testing.T) {
	keys := mustKeys(t)
	key := func(id string) []byte { u := uuid.MustParse(id); return u[:] }
	tests := []struct {
		name    string
		tamper  func(tx *bolt.Tx, ids []string) error
		place   uint64
		problem string
	}{
		{"intact", nil, 0, ""},
		{"a new record deleted and passed off as purged", func(tx *bolt.Tx, ids []string) error {
			const seq = 23
			records, chain := tx.Bucket(bucketRecords), tx.Bucket(bucketChain)
			sr, err := splitRecord(records.Get(key(ids[seq-1])))
			if err != nil {
				return err
			}
			entry := append(append([]byte(nil), chain.Get(seqKey(seq))...), sr.digests().tombstone()...)
			if err := chain.Put(seqKey(seq), entry); err != nil {
				return err
			}
			return records.Delete(key(ids[seq-1]))
		}, 23, "no signed purge covers it"},
		{"an old record of a site kept longer passed off as purged", func(tx *bolt.Tx, ids []string) error {
			records, chain := tx.Bucket(bucketRecords), tx.Bucket(bucketChain)
			sr, err := splitRecord(records.Get(key(ids[2])))
			if err != nil {
				return err
			}
			entry := append(append([]byte(nil), chain.Get(seqKey(3))...), sr.digests().tombstone()...)
			if err := chain.Put(seqKey(3), entry); err != nil {
				return err
			}
			return records.Delete(key(ids[2]))
		}, 3, "no signed purge covers it"},
		{"the purge's time moved later", func(tx *bolt.Tx, ids []string) error {
			b := tx.Bucket(bucketPurges)
			k, v := b.Cursor().First()
			v = []byte(strings.Replace(string(v), `"short.example":"20`, `"short.example":"21`, 1))
			return b.Put(k, v)
		}, 0, "purge of"},
		{"a tombstone deleted", func(tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketChain).Delete(seqKey(15))
		}, 15, "no record at place 15"},
		{"a tombstone's site changed", func(tx *bolt.Tx, ids []string) error {
			chain := tx.Bucket(bucketChain)
			v := []byte(strings.Replace(string(chain.Get(seqKey(12))), shortKept, "short.exampld", 1))
			return chain.Put(seqKey(12), v)
		}, 12, "no signed purge covers it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, ids, _ := mustPurgedFile(t, keys)
			if tt.tamper != nil {
				MustTamper(t, path, func(tx *bolt.Tx) error { return tt.tamper(tx, ids) })
			}
			v, err := VerifyFile(context.Background(), path, keys)
			if err != nil {
				t.Fatal(err)
			}
			if tt.tamper == nil {
				if !v.OK || v.Records != chainLength-10 || v.Purged != 10 {
					t.Fatalf("intact file: %+v, want OK with %d records and 10 purged", v, chainLength-10)
				}
				return
			}
			mustBeBroken(t, v, tt.place, tt.problem)
		})
	}
}

// TestPurgeDropsPrefix: once the start of the chain is purged, its places are dropped
// and verification starts at a signed base; a base that is not signed as one fails.
func TestPurgeDropsPrefix(t *testing.T) {
	keys := mustKeys(t)
	path, _, cutoff := mustPurgedFile(t, keys)
	s, err := Open(path, Checkpoints(keys, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(context.Background(), map[string]time.Time{longKept: cutoff}); err != nil || n != purgedFrom-1 {
		t.Fatalf("Purge = %d, %v; want %d", n, err, purgedFrom-1)
	}
	r := storetest.NewRecord(t, uuid.NewString(), storetest.Now())
	storetest.MustAppend(t, s, r)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	MustTamper(t, path, func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketChain).Cursor().First(); string(k) != string(seqKey(purgedTo+1)) {
			t.Errorf("the chain starts at %x, want place %d: the purged places stay", k, purgedTo+1)
		}
		return nil
	})
	v, err := VerifyFile(context.Background(), path, keys)
	if err != nil || !v.OK || v.From != purgedTo+1 || v.Records != chainLength-purgedTo+1 || v.Purged != 0 {
		t.Fatalf("after dropping the purged places: %+v, %v; want OK from place %d", v, err, purgedTo+1)
	}

	// An ordinary checkpoint cannot serve as a base: the signature says which it is.
	MustTamper(t, path, func(tx *bolt.Tx) error {
		_, cp := tx.Bucket(bucketCheckpoints).Cursor().Last()
		forged := strings.Replace(string(cp), `"seq"`, `"base":true,"seq"`, 1)
		return tx.Bucket(bucketBase).Put(keyBase, []byte(forged))
	})
	if v, err := VerifyFile(context.Background(), path, keys); err != nil || v.OK || !strings.Contains(v.Problem, "base of the chain is not signed") {
		t.Errorf("a checkpoint passed off as the base: %+v, %v", v, err)
	}
}

// TestPurgeDoesNotLaunderDeletions: records deleted behind consentd's back and passed
// off as purged stay reported after the next purge, which refuses to drop the places
// they held under a signed base.
func TestPurgeDoesNotLaunderDeletions(t *testing.T) {
	keys := mustKeys(t)
	path, ids, cutoff := mustPurgedFile(t, keys)
	// The long-kept site's records at the start of the chain, turned into tombstones.
	MustTamper(t, path, func(tx *bolt.Tx) error {
		records, chain := tx.Bucket(bucketRecords), tx.Bucket(bucketChain)
		for seq := uint64(1); seq < purgedFrom; seq++ {
			id := uuid.MustParse(ids[seq-1])
			sr, err := splitRecord(records.Get(id[:]))
			if err != nil {
				return err
			}
			if err := chain.Put(seqKey(seq), append(bytes.Clone(chain.Get(seqKey(seq))), sr.digests().tombstone()...)); err != nil {
				return err
			}
			if err := records.Delete(id[:]); err != nil {
				return err
			}
		}
		return nil
	})
	s, err := Open(path, Checkpoints(keys, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Purge(context.Background(), map[string]time.Time{shortKept: cutoff}); err == nil || !strings.Contains(err.Error(), "no signed purge covers it") {
		t.Errorf("a purge over deleted records: %v; want it refused", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	v, err := VerifyFile(context.Background(), path, keys)
	if err != nil || v.OK || v.BrokenAt != 1 || !strings.Contains(v.Problem, "no signed purge covers it") {
		t.Errorf("after the purge: %+v, %v; want broken at place 1", v, err)
	}
}

// TestPurgeOfAnotherStore: a purge signed for another store with the same key (a
// staging instance, say) does not cover this store's records.
func TestPurgeOfAnotherStore(t *testing.T) {
	keys := mustKeys(t)
	path, _, _ := mustPurgedFile(t, keys)
	other, _, _ := mustPurgedFile(t, keys)
	var statement []byte
	MustTamper(t, other, func(tx *bolt.Tx) error {
		_, statement = tx.Bucket(bucketPurges).Cursor().First()
		statement = bytes.Clone(statement)
		return nil
	})
	MustTamper(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPurges).Put(timeNanoKey(time.Now()), statement)
	})
	v, err := VerifyFile(context.Background(), path, keys)
	if err != nil || v.OK || !strings.Contains(v.Problem, "signed for another chain") {
		t.Errorf("a purge of another store: %+v, %v", v, err)
	}
}

// TestPurgeRefusesUnverifiable: a purge statement signed by a key the store's signer
// lacks may be forged to pass a deletion off as a purge; the next purge does not sign
// a base over it.
func TestPurgeRefusesUnverifiable(t *testing.T) {
	keys, forger := mustKeys(t), mustKeys(t)
	path, _, cutoff := mustPurgedFile(t, keys)
	MustTamper(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPurges)
		k, v := b.Cursor().First()
		return b.Put(k, mustResigned(t, v, forger))
	})
	s := MustOpen(t, path, Checkpoints(keys, time.Hour))
	_, err := s.Purge(context.Background(), map[string]time.Time{shortKept: cutoff, longKept: cutoff})
	if err == nil || !strings.Contains(err.Error(), "is signed by key "+forger.Signer().ID+", which is not among the keys given") {
		t.Errorf("Purge over a statement of an unknown key = %v; want it refused", err)
	}
}

// mustResigned returns the signed statement value signed anew by keys.
func mustResigned(tb testing.TB, value []byte, keys *proof.Keyring) []byte {
	tb.Helper()
	var cp consent.Checkpoint
	if err := json.Unmarshal(value, &cp); err != nil {
		tb.Fatal(err)
	}
	keys.SignCheckpoint(&cp)
	out, err := json.Marshal(&cp)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
