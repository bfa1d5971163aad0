package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/storetest"
	"github.com/mixvoip/consentd/translog"
)

// noLeaf is the place of a problem that no leaf is the first of: a record no leaf
// names, a checkpoint or a purge statement that disagrees with the whole tree.
const noLeaf = -1

// mustBeBroken fails tb unless v, err is a verification that is not OK, whose problem
// says problem, that names the leaf at (none if at is noLeaf) and the record recordID
// (none if empty). The place and the record are what an operator starts from: a
// right problem at a wrong leaf sends them to the wrong record.
func mustBeBroken(tb testing.TB, v *consent.Verification, err error, at int64, recordID, problem string) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("verification failed instead of reporting: %v", err)
	}
	switch {
	case v.OK:
		tb.Errorf("verification = %+v, want it broken with %q", v, problem)
	case !strings.Contains(v.Problem, problem):
		tb.Errorf("problem = %q, want it to say %q", v.Problem, problem)
	case at == noLeaf && v.BrokenAt != nil:
		tb.Errorf("broken at leaf %d, want no leaf named (%q)", *v.BrokenAt, v.Problem)
	case at != noLeaf && (v.BrokenAt == nil || *v.BrokenAt != at):
		tb.Errorf("broken at %v, want leaf %d (%q)", brokenAt(v), at, v.Problem)
	case v.RecordID != recordID:
		tb.Errorf("record named %q, want %q (%q)", v.RecordID, recordID, v.Problem)
	}
}

// brokenAt prints where v says the log breaks.
func brokenAt(v *consent.Verification) string {
	if v.BrokenAt == nil {
		return "no leaf"
	}
	return fmt.Sprintf("leaf %d", *v.BrokenAt)
}

func recordKey(id string) []byte { u := uuid.MustParse(id); return u[:] }

// editRecord stores the record id again, its parts as edit leaves them, at the leaf it
// claimed: what someone who changes a record with care writes.
func editRecord(tx *bolt.Tx, id string, edit func(sr *storedRecord)) error {
	b := tx.Bucket(bucketRecords)
	sr, err := splitRecord(bytes.Clone(b.Get(recordKey(id))))
	if err != nil {
		return err
	}
	edit(&sr)
	return b.Put(recordKey(id), storedValue(sr))
}

// storedValue is the value of the record sr, at the leaf it names.
func storedValue(sr storedRecord) []byte {
	v := encodeRecord(sr.consentID, sr.decision, sr.identifying)
	binary.BigEndian.PutUint64(v[offsetIndex:], uint64(sr.index))
	return v
}

// editLeaf stores the leaf at index again as edit leaves it.
func editLeaf(tx *bolt.Tx, index int64, edit func(l *translog.Leaf)) error {
	b := tx.Bucket(bucketLog)
	var leaf translog.Leaf
	if err := leaf.UnmarshalBinary(b.Get(leafKey(index))); err != nil {
		return err
	}
	edit(&leaf)
	v, err := leaf.MarshalBinary()
	if err != nil {
		return err
	}
	return b.Put(leafKey(index), v)
}

// rehash replaces the tree's hashes by those the stored leaves give, and returns how
// many leaves there are: the tree of a log rewritten with care.
func rehash(tx *bolt.Tx) (int64, error) {
	log := tx.Bucket(bucketLog)
	var leaves [][]byte
	c := log.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if _, ok := leafIndex(k); ok {
			leaves = append(leaves, bytes.Clone(v))
		}
	}
	var hashes [][]byte
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) == 8 && !bytes.Equal(k, keyCheckpoint) {
			hashes = append(hashes, bytes.Clone(k))
		}
	}
	for _, k := range hashes {
		if err := log.Delete(k); err != nil {
			return 0, err
		}
	}
	read := tlog.HashReaderFunc(logTx{tx: tx}.ReadHashes)
	var n int64
	for _, leaf := range leaves {
		hashes, err := tlog.StoredHashes(n, leaf, read)
		if err != nil {
			return 0, err
		}
		if err := (logTx{tx: tx}).WriteHashes(tlog.StoredHashIndex(0, n), hashes); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// resign stores a checkpoint of the tree of n leaves that tx holds, signed with the
// log's own key: what whoever holds the key and the disk can do.
func resign(tx *bolt.Tx, n int64) error {
	root, err := tlog.TreeHash(n, tlog.HashReaderFunc(logTx{tx: tx}.ReadHashes))
	if err != nil {
		return err
	}
	signer, err := storetest.Keys().LogSigner(storetest.Origin)
	if err != nil {
		return err
	}
	cp, err := signer.SignTree(n, root)
	if err != nil {
		return err
	}
	return (logTx{tx: tx}).PutCheckpoint(cp.Signed)
}

// mustCheckpoint returns the checkpoint stored in the closed store at path, as an
// auditor who fetched it then would keep it.
func mustCheckpoint(tb testing.TB, path string) *consent.Checkpoint {
	tb.Helper()
	return mustCheckpointWith(tb, path, testVerifier(tb))
}

// flipMarketing changes one byte of a decision of storetest.NewRecord: its refusal of
// marketing no longer reads false.
func flipMarketing(sr *storedRecord) {
	i := bytes.Index(sr.decision, []byte(`"marketing":false`))
	sr.decision[i+len(`"marketing":`)] = 't'
}

// TestVerify: whatever someone with access to the disk changes in the records, the
// leaves or the tree, verification reports it at the first leaf it breaks, and names
// the record there when the leaf can still be trusted to name it.
func TestVerify(t *testing.T) {
	const n = 10
	tests := []struct {
		name    string
		tamper  func(tx *bolt.Tx, ids []string) error
		at      int64 // the first bad leaf, or noLeaf
		record  int   // the index in ids of the record named, -1 for none
		problem string
	}{
		{"one byte of a decision changed", func(tx *bolt.Tx, ids []string) error {
			return editRecord(tx, ids[6], flipMarketing)
		}, 6, 6, "the decision of record"},
		{"a decision part grown into the identifying part", func(tx *bolt.Tx, ids []string) error {
			// The parts' boundary moved, every byte kept: the digests are of the
			// parts, not of the value.
			b := tx.Bucket(bucketRecords)
			v := bytes.Clone(b.Get(recordKey(ids[2])))
			binary.BigEndian.PutUint32(v[25:offsetDecision], binary.BigEndian.Uint32(v[25:offsetDecision])+1)
			return b.Put(recordKey(ids[2]), v)
		}, 2, 2, "the decision of record"},
		{"the user agent changed", func(tx *bolt.Tx, ids []string) error {
			return editRecord(tx, ids[3], func(sr *storedRecord) {
				i := bytes.Index(sr.identifying, []byte("Mozilla"))
				sr.identifying[i+len("Mozill")] = 'b'
			})
		}, 3, 3, "the identifying part of record"},
		{"the identifying part cut short", func(tx *bolt.Tx, ids []string) error {
			// Emptied, it would read as erased; cut short, it is altered.
			return editRecord(tx, ids[8], func(sr *storedRecord) { sr.identifying = sr.identifying[:translog.SaltSize] })
		}, 8, 8, "the identifying part of record"},
		{"a record deleted, its leaf and hashes kept", func(tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketRecords).Delete(recordKey(ids[4]))
		}, 4, 4, "was deleted: no signed purge covers it"},
		{"a leaf changed", func(tx *bolt.Tx, ids []string) error {
			return editLeaf(tx, 5, func(l *translog.Leaf) { l.RecordedAt = l.RecordedAt.Add(-time.Hour) })
		}, 5, -1, "a stored hash differs from the one its bytes give"},
		{"a leaf changed to agree with its changed record", func(tx *bolt.Tx, ids []string) error {
			// The record and its leaf agree again: only the tree's hashes tell.
			var decision []byte
			err := editRecord(tx, ids[5], func(sr *storedRecord) {
				flipMarketing(sr)
				decision = sr.decision
			})
			if err != nil {
				return err
			}
			return editLeaf(tx, 5, func(l *translog.Leaf) { l.Decision = sha256.Sum256(decision) })
		}, 5, -1, "a stored hash differs from the one its bytes give"},
		{"a stored hash changed", func(tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketLog).Put(hashKey(tlog.StoredHashIndex(0, 7)), make([]byte, tlog.HashSize))
		}, 7, -1, "a stored hash differs from the one its bytes give"},
		{"a leaf deleted with its record", func(tx *bolt.Tx, ids []string) error {
			if err := tx.Bucket(bucketLog).Delete(leafKey(3)); err != nil {
				return err
			}
			return tx.Bucket(bucketRecords).Delete(recordKey(ids[3]))
		}, 3, -1, "the log has no leaf 3"},
		{"two records' values swapped", func(tx *bolt.Tx, ids []string) error {
			b := tx.Bucket(bucketRecords)
			one, two := bytes.Clone(b.Get(recordKey(ids[1]))), bytes.Clone(b.Get(recordKey(ids[2])))
			if err := b.Put(recordKey(ids[1]), two); err != nil {
				return err
			}
			return b.Put(recordKey(ids[2]), one)
		}, 1, 1, "claims leaf 2, the log has it at 1"},
		{"two records' parts swapped, each at its own leaf", func(tx *bolt.Tx, ids []string) error {
			// Each value still claims its own leaf: the digests tell.
			b := tx.Bucket(bucketRecords)
			one, err := splitRecord(bytes.Clone(b.Get(recordKey(ids[1]))))
			if err != nil {
				return err
			}
			two, err := splitRecord(bytes.Clone(b.Get(recordKey(ids[2]))))
			if err != nil {
				return err
			}
			one.decision, two.decision = two.decision, one.decision
			one.identifying, two.identifying = two.identifying, one.identifying
			if err := b.Put(recordKey(ids[1]), storedValue(one)); err != nil {
				return err
			}
			return b.Put(recordKey(ids[2]), storedValue(two))
		}, 1, 1, "the decision of record"},
		{"two leaves swapped", func(tx *bolt.Tx, ids []string) error {
			b := tx.Bucket(bucketLog)
			one, two := bytes.Clone(b.Get(leafKey(1))), bytes.Clone(b.Get(leafKey(2)))
			if err := b.Put(leafKey(1), two); err != nil {
				return err
			}
			return b.Put(leafKey(2), one)
		}, 1, -1, "a stored hash differs from the one its bytes give"},
		{"two leaves and their records swapped, the tree rebuilt", func(tx *bolt.Tx, ids []string) error {
			// Consistent but for the signed checkpoint, which the key alone makes.
			if err := swapInLog(tx, ids, 1, 2); err != nil {
				return err
			}
			_, err := rehash(tx)
			return err
		}, noLeaf, -1, "the log's checkpoint of size 10: its root is not the log's at that size"},
		{"the tail cut off after a checkpoint", func(tx *bolt.Tx, ids []string) error {
			return cutTail(tx, ids, 3, true)
		}, n - 3, -1, "the log's checkpoint vouches for 10 leaves, the log holds 7: leaves were cut off"},
		{"a leaf and its record added after the checkpoint", func(tx *bolt.Tx, ids []string) error {
			// A copy of record 0 under a new id, at a new leaf that names it, with
			// the tree's hashes to match: only the checkpoint's size tells.
			id := uuid.Must(uuid.NewV7())
			sr, err := splitRecord(bytes.Clone(tx.Bucket(bucketRecords).Get(recordKey(ids[0]))))
			if err != nil {
				return err
			}
			sr.index = n
			if err := tx.Bucket(bucketRecords).Put(id[:], storedValue(sr)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketLog).Put(leafKey(n), bytes.Clone(tx.Bucket(bucketLog).Get(leafKey(0)))); err != nil {
				return err
			}
			if err := editLeaf(tx, n, func(l *translog.Leaf) { l.RecordID = id }); err != nil {
				return err
			}
			_, err = rehash(tx)
			return err
		}, n, -1, "the log's checkpoint vouches for 10 leaves, the log holds 11"},
		{"the checkpoint deleted", func(tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketLog).Delete(keyCheckpoint)
		}, noLeaf, -1, "the log has 10 leaves and no checkpoint"},
		{"the checkpoint's signature changed", func(tx *bolt.Tx, ids []string) error {
			b := tx.Bucket(bucketLog)
			signed := bytes.Clone(b.Get(keyCheckpoint))
			// A character well inside the signature's base64, not a padding bit.
			i := bytes.LastIndex(signed, []byte("\n")) - 10
			if signed[i] == 'A' {
				signed[i] = 'B'
			} else {
				signed[i] = 'A'
			}
			return b.Put(keyCheckpoint, signed)
		}, noLeaf, -1, "the log's checkpoint is not signed by a key of the log"},
		{"the origin changed", func(tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketMeta).Put(keyOrigin, []byte("other.example/log"))
		}, noLeaf, -1, `the store's log is "other.example/log"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, ids := MustLoggedFile(t, n)
			MustTamper(t, path, func(tx *bolt.Tx) error { return tt.tamper(tx, ids) })
			v, err := VerifyFile(context.Background(), path, testVerifier(t))
			var id string
			if tt.record >= 0 {
				id = ids[tt.record]
			}
			mustBeBroken(t, v, err, tt.at, id, tt.problem)
		})
	}
}

// swapInLog swaps the leaves at i and j, and has their records claim their new
// places.
func swapInLog(tx *bolt.Tx, ids []string, i, j int64) error {
	leaves := tx.Bucket(bucketLog)
	one, two := bytes.Clone(leaves.Get(leafKey(i))), bytes.Clone(leaves.Get(leafKey(j)))
	if err := leaves.Put(leafKey(i), two); err != nil {
		return err
	}
	if err := leaves.Put(leafKey(j), one); err != nil {
		return err
	}
	if err := editRecord(tx, ids[i], func(sr *storedRecord) { sr.index = j }); err != nil {
		return err
	}
	return editRecord(tx, ids[j], func(sr *storedRecord) { sr.index = i })
}

// cutTail deletes the last k leaves of the log of ids and their hashes, and their
// records too if records.
func cutTail(tx *bolt.Tx, ids []string, k int, records bool) error {
	n := int64(len(ids))
	for i := n - int64(k); i < n; i++ {
		if err := tx.Bucket(bucketLog).Delete(leafKey(i)); err != nil {
			return err
		}
		if records {
			if err := tx.Bucket(bucketRecords).Delete(recordKey(ids[i])); err != nil {
				return err
			}
		}
	}
	for x := tlog.StoredHashIndex(0, n-int64(k)); x < tlog.StoredHashIndex(0, n); x++ {
		if err := tx.Bucket(bucketLog).Delete(hashKey(x)); err != nil {
			return err
		}
	}
	return nil
}

// TestVerifyIntact: a store written through Open and Append verifies, leaf by leaf,
// record by record, with its checkpoint; the tamper tests start from such a store.
func TestVerifyIntact(t *testing.T) {
	t.Parallel()
	const n = 7
	path, _ := MustLoggedFile(t, n)
	v, err := VerifyFile(context.Background(), path, testVerifier(t))
	if err != nil || !v.OK || v.Leaves != n || v.Records != n || v.Checkpoints != 1 || v.Erased != 0 || v.Purged != 0 ||
		v.BrokenAt != nil || v.Problem != "" || v.MissingKey != "" || v.Origin != storetest.Origin {
		t.Fatalf("VerifyFile = %+v, %v; want OK with %d leaves and records and the checkpoint", v, err, n)
	}
	if _, err := VerifyFile(context.Background(), path, testVerifier(t), nil); err == nil {
		t.Error("VerifyFile with a nil archived checkpoint: no error")
	}
}

// TestVerifyTailCutRecordsKept: leaves and hashes cut off at the end, their records
// left behind, are reported as the cut they are, where the log ends.
func TestVerifyTailCutRecordsKept(t *testing.T) {
	t.Parallel()
	const n, cut = 10, 3
	path, ids := MustLoggedFile(t, n)
	MustTamper(t, path, func(tx *bolt.Tx) error { return cutTail(tx, ids, cut, false) })
	v, err := VerifyFile(context.Background(), path, testVerifier(t))
	mustBeBroken(t, v, err, n-cut, "", "leaves were cut off")
}

// TestVerifyInserted: a record stored that no leaf names is reported, named, and not
// counted.
func TestVerifyInserted(t *testing.T) {
	t.Parallel()
	const n = 6
	tests := []struct {
		name    string
		value   func(tx *bolt.Tx, ids []string) ([]byte, error)
		named   bool // whether the inserted record's id is named
		problem string
	}{
		{"a copy of a record under a new id", func(tx *bolt.Tx, ids []string) ([]byte, error) {
			// It claims the leaf of the record it copies, which names that one.
			return bytes.Clone(tx.Bucket(bucketRecords).Get(recordKey(ids[3]))), nil
		}, true, "is not in the log: it was inserted"},
		{"a new record past the end of the log", func(tx *bolt.Tx, ids []string) ([]byte, error) {
			r := storetest.NewRecord(t, uuid.NewString(), storetest.Now())
			decision, err := translog.DecisionPart(r)
			if err != nil {
				return nil, err
			}
			identifying, err := translog.IdentifyingPart(r)
			if err != nil {
				return nil, err
			}
			return storedValue(storedRecord{consentID: uuid.MustParse(r.ConsentID), index: n, decision: decision, identifying: identifying}), nil
		}, true, "is not in the log: it was inserted"},
		{"an unreadable record", func(tx *bolt.Tx, ids []string) ([]byte, error) {
			return []byte{recordFormat, 1, 2}, nil
		}, false, "is unreadable and not in the log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, ids := MustLoggedFile(t, n)
			id := uuid.Must(uuid.NewV7())
			MustTamper(t, path, func(tx *bolt.Tx) error {
				v, err := tt.value(tx, ids)
				if err != nil {
					return err
				}
				return tx.Bucket(bucketRecords).Put(id[:], v)
			})
			v, err := VerifyFile(context.Background(), path, testVerifier(t))
			want := ""
			if tt.named {
				want = id.String()
			}
			mustBeBroken(t, v, err, noLeaf, want, tt.problem)
			if v != nil && v.Records != n {
				t.Errorf("%d records checked, want the %d in the log", v.Records, n)
			}
		})
	}
}

// TestVerifyArchivedCheckpoints: a log rewritten with care and signed again with its
// own key verifies on its own; only the checkpoints an auditor kept apart tell, and
// those of the log as it was still verify.
func TestVerifyArchivedCheckpoints(t *testing.T) {
	t.Parallel()
	const n = 10
	rewrites := []struct {
		name    string
		rewrite func(tx *bolt.Tx, ids []string) error
	}{
		{"a refusal turned into a consent", func(tx *bolt.Tx, ids []string) error {
			var decision []byte
			err := editRecord(tx, ids[4], func(sr *storedRecord) {
				flipMarketing(sr)
				decision = sr.decision
			})
			if err != nil {
				return err
			}
			return editLeaf(tx, 4, func(l *translog.Leaf) { l.Decision = sha256.Sum256(decision) })
		}},
		{"two decisions reordered", func(tx *bolt.Tx, ids []string) error {
			return swapInLog(tx, ids, 7, 8)
		}},
	}
	for _, tt := range rewrites {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, ids := MustLoggedFile(t, n)
			archived := mustCheckpoint(t, path)
			v, err := VerifyFile(context.Background(), path, testVerifier(t), archived, archived)
			if err != nil || !v.OK || v.Archived != 2 || v.Checkpoints != 1 {
				t.Fatalf("before the rewrite: %+v, %v; want OK with the archived checkpoint, twice", v, err)
			}
			MustTamper(t, path, func(tx *bolt.Tx) error {
				if err := tt.rewrite(tx, ids); err != nil {
					return err
				}
				size, err := rehash(tx)
				if err != nil {
					return err
				}
				return resign(tx, size)
			})
			// Without this, the test below would pass for a rewrite that is caught
			// anyway.
			if v, err := VerifyFile(context.Background(), path, testVerifier(t)); err != nil || !v.OK || v.Checkpoints != 1 {
				t.Fatalf("the rewritten log on its own: %+v, %v; the rewrite was meant to pass", v, err)
			}
			v, err = VerifyFile(context.Background(), path, testVerifier(t), archived)
			mustBeBroken(t, v, err, noLeaf, "", "does not extend the archived checkpoint of size 10: its root is not the log's at that size")
			if v.Archived != 0 {
				t.Errorf("%d archived checkpoints counted, want none", v.Archived)
			}
		})
	}
}

// TestVerifyRewrittenLog: a log made again without one of its records, in a new
// store under the same name and key, verifies on its own, and not against a
// checkpoint of the log as it was: the split view an auditor's archive shows.
func TestVerifyRewrittenLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var records []*consent.Record
	for range 4 {
		records = append(records, storetest.NewRecord(t, uuid.NewString(), storetest.Now()))
	}
	original := MustOpen(t, filepath.Join(t.TempDir(), "original.db"))
	rewritten := MustOpen(t, filepath.Join(t.TempDir(), "rewritten.db"))
	var archived []*consent.Checkpoint // of the original, at sizes 1 to 4
	for _, r := range records {
		storetest.MustAppend(t, original, r)
		cp, err := original.LastCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		archived = append(archived, cp)
	}
	// Record 1 left out: the rewritten log holds 0, 2, 3.
	for _, r := range slices.Delete(slices.Clone(records), 1, 2) {
		storetest.MustAppend(t, rewritten, r)
	}

	if v, err := original.Verify(ctx, archived...); err != nil || !v.OK || v.Archived != len(archived) {
		t.Errorf("the original against its own checkpoints: %+v, %v; want OK with %d archived", v, err, len(archived))
	}
	if v, err := rewritten.Verify(ctx); err != nil || !v.OK || v.Leaves != 3 {
		t.Fatalf("the rewritten log on its own: %+v, %v; want OK", v, err)
	}
	v, err := rewritten.Verify(ctx, archived[2])
	mustBeBroken(t, v, err, noLeaf, "", "does not extend the archived checkpoint of size 3: its root is not the log's at that size")
	v, err = rewritten.Verify(ctx, archived[3])
	mustBeBroken(t, v, err, noLeaf, "", "does not extend the archived checkpoint of size 4: the log holds 3 leaves")
}

// TestVerifySnapshot: a record names the snapshot of what its visitor was shown by
// its digest; the snapshot changed, deleted or moved after the record was logged is
// reported at the first record that names it.
func TestVerifySnapshot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tamper  func(b *bolt.Bucket, k []byte) error
		at      int64
		problem string
	}{
		{"the controller changed", func(b *bolt.Bucket, k []byte) error {
			var snap consent.Snapshot
			if err := json.Unmarshal(b.Get(k), &snap); err != nil {
				return err
			}
			snap.Controller.Name = "Someone Else S.A."
			v, err := json.Marshal(&snap)
			if err != nil {
				return err
			}
			return b.Put(k, v)
		}, 2, "the snapshot of what record"},
		{"a byte of its JSON changed", func(b *bolt.Bucket, k []byte) error {
			// Whitespace: the same snapshot once decoded, not the same bytes.
			return b.Put(k, append(bytes.Clone(b.Get(k)), ' '))
		}, 2, "the snapshot of what record"},
		{"deleted", func(b *bolt.Bucket, k []byte) error {
			return b.Delete(k)
		}, 2, "the snapshot of what record"},
		{"moved under another fingerprint", func(b *bolt.Bucket, k []byte) error {
			v := bytes.Clone(b.Get(k))
			if err := b.Delete(k); err != nil {
				return err
			}
			return b.Put(append(bytes.Clone(k), 'x'), v)
		}, noLeaf, "was altered or moved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, ids, key := mustSnapshotFile(t)
			MustTamper(t, path, func(tx *bolt.Tx) error { return tt.tamper(tx.Bucket(bucketSnapshots), key) })
			v, err := VerifyFile(context.Background(), path, testVerifier(t))
			id := ""
			if tt.at != noLeaf {
				id = ids[tt.at]
			}
			mustBeBroken(t, v, err, tt.at, id, tt.problem)
		})
	}
}

// mustSnapshotFile returns a closed store of five records, the last three logged
// after the snapshot of what they were shown was stored, their ids, and the
// snapshot's key. It fails unless the store verifies and those leaves name the
// snapshot: otherwise the tests of a changed snapshot would pass for nothing.
func mustSnapshotFile(tb testing.TB) (string, []string, []byte) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "consent.db")
	s, err := Open(path, Log(storetest.Origin, storetest.Keys()))
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	var snap *consent.Snapshot
	for i := range 5 {
		r := storetest.NewRecord(tb, uuid.NewString(), storetest.Now())
		if i == 2 {
			snap = storetest.MustPutSnapshot(tb, s, r)
		}
		storetest.MustAppend(tb, s, r)
		ids = append(ids, r.ID)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	key := snapshotKey(snap.Site, snap.Fingerprint)
	MustTamper(tb, path, func(tx *bolt.Tx) error {
		digest := sha256.Sum256(tx.Bucket(bucketSnapshots).Get(key))
		for i := range int64(5) {
			var leaf translog.Leaf
			if err := leaf.UnmarshalBinary(tx.Bucket(bucketLog).Get(leafKey(i))); err != nil {
				return err
			}
			if names := leaf.Snapshot == digest; names != (i >= 2) {
				tb.Fatalf("leaf %d names the snapshot: %v, want %v", i, names, i >= 2)
			}
		}
		return nil
	})
	if v, err := VerifyFile(context.Background(), path, testVerifier(tb)); err != nil || !v.OK {
		tb.Fatalf("the store with a snapshot: %+v, %v", v, err)
	}
	return path, ids, key
}

// TestVerifyErased: an erased record's leaf keeps the digest of its identifying part,
// so the record verifies without it; its decision is still checked.
func TestVerifyErased(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "consent.db")
	s, err := Open(path, Log(storetest.Origin, storetest.Keys()))
	if err != nil {
		t.Fatal(err)
	}
	visitor := uuid.NewString()
	var ids []string
	for i := range 5 {
		consentID := uuid.NewString()
		if i%2 == 0 {
			consentID = visitor
		}
		r := storetest.NewRecord(t, consentID, storetest.Now())
		storetest.MustAppend(t, s, r)
		ids = append(ids, r.ID)
	}
	if n, err := s.Erase(ctx, visitor, nil); err != nil || n != 3 {
		t.Fatalf("Erase = %d, %v; want the visitor's 3 records", n, err)
	}
	if v, err := s.Verify(ctx); err != nil || !v.OK || v.Erased != 3 || v.Records != 5 {
		t.Errorf("the open store after the erasure: %+v, %v; want OK with 3 of 5 records erased", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if v, err := VerifyFile(ctx, path, testVerifier(t)); err != nil || !v.OK || v.Erased != 3 || v.Records != 5 {
		t.Errorf("the file after the erasure: %+v, %v; want OK with 3 of 5 records erased", v, err)
	}
	MustTamper(t, path, func(tx *bolt.Tx) error { return editRecord(tx, ids[2], flipMarketing) })
	v, err := VerifyFile(ctx, path, testVerifier(t))
	mustBeBroken(t, v, err, 2, ids[2], "the decision of record")
}

// TestVerifyMissingKey: what a key the verifier lacks signed (the key a rotation
// brought after the verifier's keys were fetched, say) is reported as such, not as
// tampering and not as OK; tampering is still reported.
func TestVerifyMissingKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	older, newer := mustRotatedKeys(t)
	rotated := proof.NewKeyring(older, newer) // the newer signs
	verifier := func(keys ...*proof.Key) *translog.Verifier {
		v, err := proof.NewKeyring(keys...).LogVerifier(storetest.Origin)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	path := filepath.Join(t.TempDir(), "consent.db")
	var ids []string
	for _, keys := range []*proof.Keyring{proof.NewKeyring(older), rotated} {
		s, err := Open(path, Log(storetest.Origin, keys))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			// Not storetest.MustAppend: it checks receipts with the tests' own key.
			r := storetest.NewRecord(t, uuid.NewString(), storetest.Now())
			if _, err := s.Append(ctx, r); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	archived := mustCheckpointWith(t, path, verifier(older, newer))

	if v, err := VerifyFile(ctx, path, verifier(older, newer), archived); err != nil || !v.OK || v.Checkpoints != 1 || v.Archived != 1 {
		t.Fatalf("with every key: %+v, %v; want OK", v, err)
	}
	v, err := VerifyFile(ctx, path, verifier(older))
	if err != nil || v.OK || v.MissingKey == "" || v.BrokenAt != nil || v.RecordID != "" || v.Records != 6 || v.Checkpoints != 0 ||
		!strings.HasPrefix(v.MissingKey, storetest.Origin+"+") || v.Problem != "the log's checkpoint is signed by key "+v.MissingKey+", which is not among the keys given" {
		t.Errorf("with the keys from before the rotation: %+v, %v; want the missing key named, nothing broken", v, err)
	}
	v, err = VerifyFile(ctx, path, verifier(older), archived)
	if err != nil || v.OK || v.MissingKey == "" || v.Archived != 0 {
		t.Errorf("an archived checkpoint of a key not given: %+v, %v; want it not counted, the missing key named", v, err)
	}
	// The store keeps its latest checkpoint only: the key that signed it is enough.
	if v, err := VerifyFile(ctx, path, verifier(newer)); err != nil || !v.OK {
		t.Errorf("with the newer key alone, which signed the checkpoint: %+v, %v; want OK", v, err)
	}

	MustTamper(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketRecords).Delete(recordKey(ids[4])) })
	v, err = VerifyFile(ctx, path, verifier(older))
	mustBeBroken(t, v, err, 4, ids[4], "was deleted")
}

// mustCheckpointWith is mustCheckpoint for a store signed by other keys than the
// tests' own.
func mustCheckpointWith(tb testing.TB, path string, verifier *translog.Verifier) *consent.Checkpoint {
	tb.Helper()
	var signed []byte
	MustTamper(tb, path, func(tx *bolt.Tx) error {
		signed = bytes.Clone(tx.Bucket(bucketLog).Get(keyCheckpoint))
		return nil
	})
	cp, err := verifier.Open(signed)
	if err != nil {
		tb.Fatal(err)
	}
	return cp
}

// TestVerifyConsentMoved: a record filed under another visitor's consent id (its
// header changed, its decision intact) is reported, and not shown to that visitor.
func TestVerifyConsentMoved(t *testing.T) {
	t.Parallel()
	path, ids := MustLoggedFile(t, 4)
	other := uuid.New()
	MustTamper(t, path, func(tx *bolt.Tx) error {
		var was uuid.UUID
		err := editRecord(tx, ids[1], func(sr *storedRecord) { was, sr.consentID = sr.consentID, other })
		if err != nil {
			return err
		}
		// In the index too, whichever level holds it.
		consents, recent, rid := tx.Bucket(bucketConsents), tx.Bucket(bucketRecent), uuid.MustParse(ids[1])
		if recent.Get(rid[:]) != nil {
			return recent.Put(rid[:], other[:])
		}
		if err := consents.Delete(consentKey(was, rid)); err != nil {
			return err
		}
		return consents.Put(consentKey(other, rid), nil)
	})
	v, err := VerifyFile(context.Background(), path, testVerifier(t))
	mustBeBroken(t, v, err, 1, ids[1], "is filed under another consent id")

	s := MustOpen(t, path)
	if records, err := s.RecordsByConsent(context.Background(), other.String()); err == nil {
		t.Errorf("the other visitor got %d records", len(records))
	}
}
