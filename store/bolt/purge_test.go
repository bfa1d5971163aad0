package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/storetest"
	"github.com/mixvoip/consentd/translog"
)

// The log of mustPurgedFile: ten old records of the long-kept site, ten old ones of
// the short-kept site, five new ones of the short-kept site, then, after the purge of
// the short-kept site's old records, one more old one of it (logged late, its clock
// stepped back). The purge leaves tombstones at leaves 10 to 19, between live records,
// and its statement names the tree of 25 leaves.
const (
	longKept, shortKept = "long.example", "short.example"
	purgedFrom          = 10
	purgedTo            = 19
	purgedLog           = 25 // leaves when the purge ran
	lateLeaf            = purgedLog
)

func mustPurgedFile(tb testing.TB) (path string, ids []string, cutoff time.Time) {
	tb.Helper()
	path = filepath.Join(tb.TempDir(), "consent.db")
	s, err := Open(path, Log(storetest.Origin, storetest.Keys()))
	if err != nil {
		tb.Fatal(err)
	}
	now := storetest.Now()
	cutoff = now.Add(-24 * time.Hour)
	appendAt := func(site string, at time.Time) {
		r := storetest.NewRecord(tb, uuid.NewString(), at)
		r.ID, r.Site = storetest.IDAt(tb, at), site // as the server makes them
		storetest.MustAppend(tb, s, r)
		ids = append(ids, r.ID)
	}
	for i := range purgedLog {
		site, at := longKept, now.Add(-48*time.Hour)
		if i >= purgedFrom {
			site = shortKept
		}
		if i > purgedTo {
			at = now
		}
		appendAt(site, at)
	}
	if n, err := s.Purge(context.Background(), map[string]time.Time{shortKept: cutoff}); err != nil || n != purgedTo-purgedFrom+1 {
		tb.Fatalf("Purge = %d, %v; want %d", n, err, purgedTo-purgedFrom+1)
	}
	appendAt(shortKept, now.Add(-48*time.Hour))
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return path, ids, cutoff
}

// statements returns the purge statements stored in tx, opened, oldest first.
func statements(tb testing.TB, tx *bolt.Tx) []*translog.Purge {
	tb.Helper()
	var out []*translog.Purge
	err := tx.Bucket(bucketPurges).ForEach(func(k, v []byte) error {
		p, err := testVerifier(tb).OpenPurge(v)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// putStatement stores a purge statement signed by signer over tree, as Purge would
// store its own.
func putStatement(tx *bolt.Tx, signer *translog.Signer, tree *consent.Checkpoint, site string, before time.Time) error {
	p, err := signer.SignPurge(tree, site, before)
	if err != nil {
		return err
	}
	key := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	return tx.Bucket(bucketPurges).Put(append(key, site...), p.Signed)
}

// ownSigner is the signer of the tests' log, whose key whoever launders a deletion
// may hold too.
func ownSigner(tb testing.TB) *translog.Signer {
	tb.Helper()
	s, err := storetest.Keys().LogSigner(storetest.Origin)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestPurgeTamper: after a purge, verification still tells a deletion from a purge.
// A record deleted and passed off as purged, by the statement there is or by one
// made up, is reported; so is a statement altered, or not of this tree, and a
// tombstone deleted or changed.
func TestPurgeTamper(t *testing.T) {
	t.Parallel()
	forger, err := proof.NewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	deleteRecord := func(tx *bolt.Tx, ids []string, i int) error {
		return tx.Bucket(bucketRecords).Delete(recordKey(ids[i]))
	}
	tests := []struct {
		name    string
		tamper  func(t *testing.T, tx *bolt.Tx, ids []string) error
		at      int64 // the first bad leaf, or noLeaf
		record  int   // the index in ids of the record named, -1 for none
		problem string
		missing bool // whether a statement of a key not given is reported too
	}{
		{"a new record of the purged site deleted", func(t *testing.T, tx *bolt.Tx, ids []string) error {
			// The statement covers the site's records before its time only.
			return deleteRecord(tx, ids, 22)
		}, 22, 22, "was deleted: no signed purge covers it", false},
		{"an old record of a site kept longer deleted", func(t *testing.T, tx *bolt.Tx, ids []string) error {
			// The statement covers its own site only.
			return deleteRecord(tx, ids, 2)
		}, 2, 2, "was deleted: no signed purge covers it", false},
		{"an old record logged after the purge deleted", func(t *testing.T, tx *bolt.Tx, ids []string) error {
			// Of the purged site and before the time, but not in the tree the
			// statement names.
			return deleteRecord(tx, ids, lateLeaf)
		}, lateLeaf, lateLeaf, "was deleted: no signed purge covers it", false},
		{"the purge statement deleted", func(t *testing.T, tx *bolt.Tx, ids []string) error {
			b := tx.Bucket(bucketPurges)
			k, _ := b.Cursor().First()
			return b.Delete(k)
		}, purgedFrom, purgedFrom, "was deleted: no signed purge covers it", false},
		{"the statement's time moved later, a new record deleted", func(t *testing.T, tx *bolt.Tx, ids []string) error {
			b := tx.Bucket(bucketPurges)
			k, v := b.Cursor().First()
			p := statements(t, tx)[0]
			old, later := p.Before.Format(time.RFC3339Nano), p.Before.Add(48*time.Hour).Format(time.RFC3339Nano)
			if !bytes.Contains(v, []byte(old)) {
				t.Fatalf("the statement %q does not hold its time %s", v, old)
			}
			if err := b.Put(k, bytes.Replace(v, []byte(old), []byte(later), 1)); err != nil {
				return err
			}
			return deleteRecord(tx, ids, 22)
		}, noLeaf, -1, "is not signed by a key of the log", false},
		// Taken at its word, as a statement by an old key the verifier was not given
		// would be: not OK, the missing record and the key it would take named.
		{"a statement signed by another key, an old record deleted", func(t *testing.T, tx *bolt.Tx, ids []string) error {
			signer, err := translog.NewSigner(storetest.Origin, forger.Private)
			if err != nil {
				return err
			}
			if err := putStatement(tx, signer, statements(t, tx)[0].Tree(), longKept, time.Now()); err != nil {
				return err
			}
			return deleteRecord(tx, ids, 2)
		}, noLeaf, -1, "1 records are missing that only a purge statement signed by key " + storetest.Origin + "+", true},
		{"a statement of the log's key for another tree, an old record deleted", func(t *testing.T, tx *bolt.Tx, ids []string) error {
			// Whoever holds the key can sign any statement; the tree it names must
			// still be this log's.
			tree := &consent.Checkpoint{Origin: storetest.Origin, Size: purgedLog, Root: [32]byte{1}}
			if err := putStatement(tx, ownSigner(t), tree, longKept, time.Now()); err != nil {
				return err
			}
			return deleteRecord(tx, ids, 2)
		}, noLeaf, -1, "was signed for another tree", false},
		{"a statement of the log's key for a tree larger than the log", func(t *testing.T, tx *bolt.Tx, ids []string) error {
			tree := &consent.Checkpoint{Origin: storetest.Origin, Size: 1000, Root: [32]byte{1}}
			if err := putStatement(tx, ownSigner(t), tree, shortKept, time.Now()); err != nil {
				return err
			}
			return deleteRecord(tx, ids, lateLeaf)
		}, noLeaf, -1, "was signed for another tree", false},
		{"the statement of another store of the same key", func(t *testing.T, tx *bolt.Tx, ids []string) error {
			// A staging instance's, say: same name, same key, another tree.
			other, _, _ := mustPurgedFile(t)
			var statement []byte
			MustTamper(t, other, func(tx *bolt.Tx) error {
				_, statement = tx.Bucket(bucketPurges).Cursor().First()
				statement = bytes.Clone(statement)
				return nil
			})
			return tx.Bucket(bucketPurges).Put([]byte("another store's"), statement)
		}, noLeaf, -1, "was signed for another tree", false},
		{"a statement of this tree for another site, an old record deleted", func(t *testing.T, tx *bolt.Tx, ids []string) error {
			if err := putStatement(tx, ownSigner(t), statements(t, tx)[0].Tree(), "other.example", time.Now()); err != nil {
				return err
			}
			return deleteRecord(tx, ids, 3)
		}, 3, 3, "was deleted: no signed purge covers it", false},
		{"a tombstone deleted", func(t *testing.T, tx *bolt.Tx, ids []string) error {
			return tx.Bucket(bucketLog).Delete(leafKey(15))
		}, 15, -1, "the log has no leaf 15", false},
		{"a tombstone's site changed", func(t *testing.T, tx *bolt.Tx, ids []string) error {
			return editLeaf(tx, 12, func(l *translog.Leaf) { l.Site = longKept })
		}, 12, -1, "a stored hash differs from the one its bytes give", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, ids, _ := mustPurgedFile(t)
			MustTamper(t, path, func(tx *bolt.Tx) error { return tt.tamper(t, tx, ids) })
			v, err := VerifyFile(context.Background(), path, testVerifier(t))
			id := ""
			if tt.record >= 0 {
				id = ids[tt.record]
			}
			mustBeBroken(t, v, err, tt.at, id, tt.problem)
			if missing := v != nil && v.MissingKey != ""; missing != tt.missing {
				t.Errorf("missing key %q, want one named: %v", v.MissingKey, tt.missing)
			}
		})
	}
}

// TestPurgedFile: the file mustPurgedFile makes verifies, its purged records counted
// as such and their leaves kept: the tamper tests start from it.
func TestPurgedFile(t *testing.T) {
	t.Parallel()
	path, ids, cutoff := mustPurgedFile(t)
	const purged = purgedTo - purgedFrom + 1
	v, err := VerifyFile(context.Background(), path, testVerifier(t))
	if err != nil || !v.OK || v.Leaves != purgedLog+1 || v.Records != purgedLog+1-purged || v.Purged != purged || v.Checkpoints != 1 {
		t.Fatalf("VerifyFile = %+v, %v; want OK with %d leaves, %d of them purged", v, err, purgedLog+1, purged)
	}
	MustTamper(t, path, func(tx *bolt.Tx) error {
		got := statements(t, tx)
		if len(got) != 1 || got[0].Site != shortKept || !got[0].Before.Equal(cutoff) || got[0].Size != purgedLog {
			t.Errorf("purge statements %+v; want one of %s before %v over %d leaves", got, shortKept, cutoff, purgedLog)
		}
		for i := int64(purgedFrom); i <= purgedTo; i++ {
			var leaf translog.Leaf
			if err := leaf.UnmarshalBinary(tx.Bucket(bucketLog).Get(leafKey(i))); err != nil || leaf.RecordID.String() != ids[i] {
				t.Errorf("leaf %d after the purge: %v, %v; want the tombstone of %s", i, leaf.RecordID, err, ids[i])
			}
		}
		return nil
	})
}

// TestPurge: a purge removes exactly the records of the sites given recorded before
// their times; the log keeps every leaf, holds one signed statement per site that
// lost records, and still verifies.
func TestPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "consent.db")
	s, err := Open(path, Log(storetest.Origin, storetest.Keys()))
	if err != nil {
		t.Fatal(err)
	}
	now, day := storetest.Now(), 24*time.Hour
	before := map[string]time.Time{"a.example": now.Add(-10 * day), "b.example": now.Add(-20 * day)}
	type logged struct {
		record *consent.Record
		index  int64
		purged bool
	}
	var all []logged
	add := func(site, consentID string, at time.Time) {
		r := storetest.NewRecord(t, consentID, at)
		r.ID, r.Site = storetest.IDAt(t, at), site
		storetest.MustAppend(t, s, r)
		cutoff, ok := before[site]
		all = append(all, logged{r, int64(len(all)), ok && at.Before(cutoff)})
	}
	for i := range 30 {
		add([]string{"a.example", "b.example", "c.example"}[i%3], uuid.NewString(), now.Add(-time.Duration(30-i)*day))
	}
	// Recorded at the cutoff itself: not before it, so kept.
	add("a.example", uuid.NewString(), before["a.example"])
	// A returning visitor: the old decision goes, the new one stays.
	returning := uuid.NewString()
	add("a.example", returning, now.Add(-15*day))
	add("a.example", returning, now.Add(-time.Hour))
	purged := 0
	for _, l := range all {
		if l.purged {
			purged++
		}
	}
	if purged == 0 || purged == len(all) {
		t.Fatalf("%d of %d records to purge: the test purges some and keeps some", purged, len(all))
	}

	if n, err := s.Purge(ctx, before); err != nil || n != purged {
		t.Fatalf("Purge = %d, %v; want %d", n, err, purged)
	}
	for _, l := range all {
		recs := storetest.MustRecordsByConsent(t, s, l.record.ConsentID)
		found := slices.ContainsFunc(recs, func(r *consent.Record) bool { return r.ID == l.record.ID })
		if found == l.purged {
			t.Errorf("record %s of %s at %v (leaf %d): found after the purge: %v", l.record.ID, l.record.Site, l.record.RecordedAt, l.index, found)
		}
	}
	if recs := storetest.MustRecordsByConsent(t, s, returning); len(recs) != 1 || recs[0].ID != all[len(all)-1].record.ID {
		t.Errorf("the returning visitor has %d records after the purge, want the newer one", len(recs))
	}
	v, err := s.Verify(ctx)
	if err != nil || !v.OK || v.Leaves != int64(len(all)) || v.Records != len(all)-purged || v.Purged != purged {
		t.Errorf("after the purge: %+v, %v; want OK with all %d leaves, %d purged", v, err, len(all), purged)
	}
	head, err := s.LastCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustStatements := func(t *testing.T, when string) {
		t.Helper()
		err := s.db.View(func(tx *bolt.Tx) error {
			got := statements(t, tx)
			if len(got) != len(before) {
				t.Errorf("%s: %d purge statements, want one per site purged, %d", when, len(got), len(before))
			}
			for _, p := range got {
				if !p.Before.Equal(before[p.Site]) || p.Size != int64(len(all)) || p.Root != head.Root {
					t.Errorf("%s: a statement of %s before %v over %d leaves; want it over the head, before %v", when, p.Site, p.Before, p.Size, before[p.Site])
				}
			}
			leaves := tx.Bucket(bucketLog)
			for _, l := range all {
				var leaf translog.Leaf
				if err := leaf.UnmarshalBinary(leaves.Get(leafKey(l.index))); err != nil || leaf.RecordID.String() != l.record.ID {
					t.Errorf("%s: leaf %d: %v, %v; want it to name %s still", when, l.index, leaf.RecordID, err, l.record.ID)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	mustStatements(t, "after the purge")

	// Nothing left to purge: nothing is signed either.
	if n, err := s.Purge(ctx, before); err != nil || n != 0 {
		t.Errorf("a second Purge = %d, %v; want 0", n, err)
	}
	if n, err := s.Purge(ctx, map[string]time.Time{"c.example": now.Add(-100 * day)}); err != nil || n != 0 {
		t.Errorf("a Purge before every record of its site = %d, %v; want 0", n, err)
	}
	mustStatements(t, "after purges that removed nothing")

	later := storetest.NewRecord(t, uuid.NewString(), storetest.Now())
	storetest.MustAppend(t, s, later)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	v, err = VerifyFile(ctx, path, testVerifier(t))
	if err != nil || !v.OK || v.Leaves != int64(len(all)+1) || v.Records != len(all)+1-purged || v.Purged != purged {
		t.Errorf("the file after the purge and an append: %+v, %v; want OK with %d purged", v, err, purged)
	}
	// The consent index lost the purged records' keys with them: they stay gone.
	s = MustOpen(t, path)
	for _, l := range all {
		recs := storetest.MustRecordsByConsent(t, s, l.record.ConsentID)
		if found := slices.ContainsFunc(recs, func(r *consent.Record) bool { return r.ID == l.record.ID }); found == l.purged {
			t.Errorf("record %s (leaf %d) after a reopen: found %v", l.record.ID, l.index, found)
		}
	}
	if got, want := indexKeys(t, s), len(all)+1-purged; got != want {
		t.Errorf("the consent index holds %d keys after the purge, want %d, one per record left", got, want)
	}
}

// TestPurgeAfterErase: an erased record is purged like any other, and the log counts
// it purged, not erased.
func TestPurgeAfterErase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := MustOpen(t, filepath.Join(t.TempDir(), "consent.db"))
	now := storetest.Now()
	cutoff := now.Add(-24 * time.Hour)
	visitor := uuid.NewString()
	for _, at := range []time.Time{now.Add(-72 * time.Hour), now.Add(-48 * time.Hour), now} {
		r := storetest.NewRecord(t, visitor, at)
		r.ID = storetest.IDAt(t, at)
		storetest.MustAppend(t, s, r)
	}
	storetest.MustAppend(t, s, storetest.NewRecord(t, uuid.NewString(), now))
	if n, err := s.Erase(ctx, visitor, nil); err != nil || n != 3 {
		t.Fatalf("Erase = %d, %v; want 3", n, err)
	}
	if n, err := s.Purge(ctx, map[string]time.Time{"shop.example": cutoff}); err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want the 2 old erased records", n, err)
	}
	if v, err := s.Verify(ctx); err != nil || !v.OK || v.Leaves != 4 || v.Records != 2 || v.Erased != 1 || v.Purged != 2 {
		t.Errorf("after an erasure and a purge: %+v, %v; want OK, 2 records of which 1 erased, 2 purged", v, err)
	}
}

// TestPurgeStatementKeyNotGiven: a purge statement signed by a key the verifier lacks
// (the store's keys rotated after the verifier's were fetched) is not OK, and names
// the key missing: whether it covers the records gone cannot be told without it.
func TestPurgeStatementKeyNotGiven(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	older, newer := mustRotatedKeys(t)
	path := filepath.Join(t.TempDir(), "consent.db")
	s, err := Open(path, Log(storetest.Origin, proof.NewKeyring(older)))
	if err != nil {
		t.Fatal(err)
	}
	old := storetest.Now().Add(-48 * time.Hour)
	for range 3 {
		r := storetest.NewRecord(t, uuid.NewString(), old)
		r.ID = storetest.IDAt(t, old)
		if _, err := s.Append(ctx, r); err != nil { // its receipt is not of the tests' key
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The checkpoint stays the older key's: the purge signs no checkpoint.
	s, err = Open(path, Log(storetest.Origin, proof.NewKeyring(older, newer)))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(ctx, map[string]time.Time{"shop.example": old.Add(time.Hour)}); err != nil || n != 3 {
		t.Fatalf("Purge = %d, %v; want 3", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	verifier := func(keys ...*proof.Key) *translog.Verifier {
		v, err := proof.NewKeyring(keys...).LogVerifier(storetest.Origin)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v, err := VerifyFile(ctx, path, verifier(older, newer)); err != nil || !v.OK || v.Purged != 3 {
		t.Fatalf("with both keys: %+v, %v; want OK with 3 purged", v, err)
	}
	// Without the key, the statement covers nothing: the purged records cannot be
	// told from deleted ones, and the key that would tell is named.
	v, err := VerifyFile(ctx, path, verifier(older))
	if err != nil || v.OK || v.MissingKey == "" {
		t.Errorf("without the key of the purge statement: %+v, %v; want not OK, the key missing named", v, err)
	}
}
