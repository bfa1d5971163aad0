package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
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

// MustChainedFile writes n records through a Store, closing and reopening it half
// way (the chain head must survive), and returns the file and the record ids in
// chain order.
func MustChainedFile(tb testing.TB, n int, signer consent.CheckpointSigner) (string, []string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "consent.db")
	var ids []string
	for part := range 2 {
		// A checkpoint at each Close: after the first half and at the end.
		s, err := Open(path, Checkpoints(signer, time.Hour))
		if err != nil {
			tb.Fatal(err)
		}
		for range n / 2 {
			r := storetest.NewRecord(tb, uuid.NewString(), storetest.Now())
			storetest.MustAppend(tb, s, r)
			ids = append(ids, r.ID)
		}
		if part == 1 {
			if v, err := s.Verify(context.Background()); err != nil || !v.OK || v.Records != n || v.Checkpoints != 1 {
				tb.Fatalf("the live store does not verify: %+v, %v", v, err)
			}
		}
		if err := s.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	return path, ids
}

// mustKeys returns a keyring of one new key, which signs, and of the key the
// receipts of storetest.NewRecord name.
func mustKeys(tb testing.TB) *proof.Keyring {
	tb.Helper()
	k, err := proof.NewKey(time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return proof.NewKeyring(storetest.ReceiptKey(), k)
}

// mustBeBroken fails tb unless v reports a broken chain with problem, at place if
// place is not 0.
func mustBeBroken(tb testing.TB, v *consent.Verification, place uint64, problem string) {
	tb.Helper()
	if v.OK || !strings.Contains(v.Problem, problem) || (place != 0 && v.BrokenAt != place) {
		tb.Errorf("verification = %+v, want broken at %d with %q", v, place, problem)
	}
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
	keys := mustKeys(t)
	others := mustKeys(t)
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
			v, err := encodeRecord(r, uuid.MustParse(r.ConsentID), r.Receipt, [32]byte{})
			if err != nil {
				return err
			}
			return tx.Bucket(bucketRecords).Put(key(r.ID), v)
		}, 0, "not in the chain"},
		{"forged record inserted before the start of the chain", func(tx *bolt.Tx, ids []string) error {
			r := storetest.NewRecord(t, uuid.NewString(), storetest.Now())
			v, err := encodeRecord(r, uuid.MustParse(r.ConsentID), r.Receipt, [32]byte{}) // at place 0
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketRecords).Put(key(r.ID), v); err != nil {
				return err
			}
			return tx.Bucket(bucketChain).Put(seqKey(0), append(key(r.ID), make([]byte, 32)...))
		}, 0, "before its start"},
		{"records swapped", func(tx *bolt.Tx, ids []string) error {
			b := tx.Bucket(bucketRecords)
			a, c := append([]byte(nil), b.Get(key(ids[1]))...), append([]byte(nil), b.Get(key(ids[2]))...)
			if err := b.Put(key(ids[1]), c); err != nil {
				return err
			}
			return b.Put(key(ids[2]), a)
		}, 2, "claims place 3"},
		{"tail cut off after a checkpoint", func(tx *bolt.Tx, ids []string) error {
			for seq := n - 2; seq <= n; seq++ {
				if err := tx.Bucket(bucketRecords).Delete(key(ids[seq-1])); err != nil {
					return err
				}
				if err := tx.Bucket(bucketChain).Delete(seqKey(uint64(seq))); err != nil {
					return err
				}
			}
			return nil
		}, n, "records were cut off"},
		{"chain rewritten consistently", func(tx *bolt.Tx, ids []string) error {
			// Turn a refusal into a grant and recompute every link after it: only the
			// signed checkpoints can tell.
			records, chain := tx.Bucket(bucketRecords), tx.Bucket(bucketChain)
			var prev [32]byte
			for seq := uint64(1); seq <= n; seq++ {
				id := key(ids[seq-1])
				v := append([]byte(nil), records.Get(id)...)
				if seq == 5 {
					v = []byte(strings.Replace(string(v), `"marketing":false`, `"marketing":true `, 1))
					if err := records.Put(id, v); err != nil {
						return err
					}
				}
				sr, err := splitRecord(v)
				if err != nil {
					return err
				}
				prev = link(prev[:], seq, id, sr.digests())
				if err := chain.Put(seqKey(seq), append(append([]byte(nil), id...), prev[:]...)); err != nil {
					return err
				}
			}
			return nil
		}, n / 2, "differs from its signed checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, ids := MustChainedFile(t, n, keys)
			if tt.tamper != nil {
				MustTamper(t, path, func(tx *bolt.Tx) error { return tt.tamper(tx, ids) })
			}
			v, err := VerifyFile(context.Background(), path, keys)
			if err != nil {
				t.Fatal(err)
			}
			if tt.tamper == nil {
				if !v.OK || v.Records != n || v.Checkpoints != 2 {
					t.Fatalf("intact file: %+v", v)
				}
				// Checkpoints signed by a key the verifier lacks do not count, and do
				// not pass for tampering either.
				if v, _ := VerifyFile(context.Background(), path, others); v.OK || v.MissingKey != keys.Signer().ID || v.BrokenAt != 0 ||
					!strings.Contains(v.Problem, "the checkpoint at place 10 is signed by key "+keys.Signer().ID+", which is not among the keys given") {
					t.Errorf("checkpoints of an unknown key: %+v", v)
				}
				return
			}
			mustBeBroken(t, v, tt.place, tt.problem)
		})
	}
}

// TestVerifyCraftedBytes: whatever someone with access to the disk writes into the
// file, verification reports a broken chain and never panics.
func TestVerifyCraftedBytes(t *testing.T) {
	keys := mustKeys(t)
	key := func(id string) []byte { u := uuid.MustParse(id); return u[:] }
	tests := []struct {
		name   string
		tamper func(tx *bolt.Tx, ids []string) error
	}{
		{"a short chain key", func(tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketChain).Put([]byte{1}, make([]byte, chainLinkEnd))
		}},
		{"a short chain entry", func(tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketChain).Put(seqKey(3), []byte{1, 2, 3})
		}},
		{"a short chain entry where a checkpoint vouches", func(tx *bolt.Tx, ids []string) error {
			_, cp := tx.Bucket(bucketCheckpoints).Cursor().First()
			var c consent.Checkpoint
			if err := json.Unmarshal(cp, &c); err != nil {
				return err
			}
			return tx.Bucket(bucketChain).Put(seqKey(c.Seq), []byte{1, 2, 3})
		}},
		{"a short checkpoint key", func(tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketCheckpoints).Put([]byte{1}, []byte("{}"))
		}},
		{"a short purge key", func(tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketPurges).Put([]byte{1}, []byte("{}"))
		}},
		{"a record of one byte", func(tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketRecords).Put(key(ids[4]), []byte{recordFormat})
		}},
		{"a record whose decision part is empty", func(tx *bolt.Tx, ids []string) error {
			b := tx.Bucket(bucketRecords)
			v := bytes.Clone(b.Get(key(ids[4])))
			at := offsetSite + int(v[offsetSite-1])
			binary.BigEndian.PutUint32(v[at:], 0)
			return b.Put(key(ids[4]), v)
		}},
		{"a tombstone of the wrong length", func(tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketChain).Put(seqKey(5), append(bytes.Clone(tx.Bucket(bucketChain).Get(seqKey(5))), 0, 1, 2))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, ids := MustChainedFile(t, 10, keys)
			MustTamper(t, path, func(tx *bolt.Tx) error { return tt.tamper(tx, ids) })
			v, err := VerifyFile(context.Background(), path, keys)
			if err != nil || v.OK {
				t.Errorf("verification = %+v, %v; want a broken chain", v, err)
			}
		})
	}
}

// TestVerifyArchivedCheckpoints: a chain rewritten consistently, with every
// checkpoint in the file deleted, verifies on its own; the checkpoints an auditor
// kept apart still catch it.
func TestVerifyArchivedCheckpoints(t *testing.T) {
	const n = 20
	keys := mustKeys(t)
	path, ids := MustChainedFile(t, n, keys)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	archived, err := s.LastCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	MustTamper(t, path, func(tx *bolt.Tx) error {
		records, chain := tx.Bucket(bucketRecords), tx.Bucket(bucketChain)
		var prev [32]byte
		for seq := uint64(1); seq <= n; seq++ {
			id := uuid.MustParse(ids[seq-1])
			v := bytes.Clone(records.Get(id[:]))
			if seq == 5 {
				v = []byte(strings.Replace(string(v), `"marketing":false`, `"marketing":true `, 1))
				if err := records.Put(id[:], v); err != nil {
					return err
				}
			}
			sr, err := splitRecord(v)
			if err != nil {
				return err
			}
			prev = link(prev[:], seq, id[:], sr.digests())
			if err := chain.Put(seqKey(seq), append(bytes.Clone(id[:]), prev[:]...)); err != nil {
				return err
			}
		}
		if err := tx.DeleteBucket(bucketCheckpoints); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketCheckpoints)
		return err
	})
	if v, err := VerifyFile(context.Background(), path, keys); err != nil || !v.OK {
		t.Fatalf("without the archive: %+v, %v; the rewrite was expected to pass", v, err)
	}
	v, err := VerifyFile(context.Background(), path, keys, archived)
	if err != nil || v.OK || v.BrokenAt != n || !strings.Contains(v.Problem, "differs from its signed checkpoint") {
		t.Errorf("with the archived checkpoint: %+v, %v; want broken at place %d", v, err, n)
	}
}

// TestVerifyMissingKey: checkpoints signed by a key the verifier lacks, the one a
// rotation brought after its keys were fetched, say, are reported as such, and not
// as tampering; tampering still is.
func TestVerifyMissingKey(t *testing.T) {
	old, newer := MustKey(t, time.Now()), MustKey(t, time.Now().Add(time.Second))
	keys := proof.NewKeyring(storetest.ReceiptKey(), old)
	path := filepath.Join(t.TempDir(), "consent.db")
	var ids []string
	for range 2 {
		s, err := Open(path, Checkpoints(keys, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			r := storetest.NewRecord(t, uuid.NewString(), storetest.Now())
			storetest.MustAppend(t, s, r)
			ids = append(ids, r.ID)
		}
		if err := s.Close(); err != nil { // signs a checkpoint
			t.Fatal(err)
		}
		keys.Replace(proof.NewKeyring(storetest.ReceiptKey(), old, newer))
	}
	verifier := func(keys ...*proof.Key) consent.CheckpointVerifier {
		v, err := proof.NewVerifier(proof.NewKeyring(keys...).Public())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	if v, err := VerifyFile(context.Background(), path, verifier(old, newer)); err != nil || !v.OK || v.Checkpoints != 2 {
		t.Fatalf("with every key: %+v, %v; want OK", v, err)
	}
	v, err := VerifyFile(context.Background(), path, verifier(old))
	if err != nil || v.OK || v.MissingKey != newer.ID || v.BrokenAt != 0 || v.RecordID != "" || v.Records != 6 ||
		v.Problem != "the checkpoint at place 6 is signed by key "+newer.ID+", which is not among the keys given" {
		t.Errorf("with the keys from before the rotation: %+v, %v; want the missing key named, nothing broken", v, err)
	}

	MustTamper(t, path, func(tx *bolt.Tx) error {
		id := uuid.MustParse(ids[4])
		return tx.Bucket(bucketRecords).Delete(id[:])
	})
	v, err = VerifyFile(context.Background(), path, verifier(old))
	if err != nil || v.OK || v.MissingKey != "" || v.BrokenAt != 5 || !strings.Contains(v.Problem, "was deleted") {
		t.Errorf("tampered, with the keys from before the rotation: %+v, %v; want broken at place 5", v, err)
	}
}
