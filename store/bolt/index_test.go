package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/store/storetest"
)

// TestIndexBuiltForOlderStore: a store written before the consent index, or whose
// build of it was cut short, gets the whole index when it opens, and every visitor
// finds their records; a purge takes the keys of the records it removes.
func TestIndexBuiltForOlderStore(t *testing.T) {
	cases := map[string]func(tx *bolt.Tx, consentOf map[string]uuid.UUID) error{
		"written before the index and the counters": func(tx *bolt.Tx, _ map[string]uuid.UUID) error {
			for _, b := range derived {
				if err := tx.DeleteBucket(b); err != nil {
					return err
				}
			}
			for _, k := range [][]byte{keyIndexed, keyCounted} {
				if err := tx.Bucket(bucketMeta).Delete(k); err != nil {
					return err
				}
			}
			return nil
		},
		"its build cut short": func(tx *bolt.Tx, consentOf map[string]uuid.UUID) error {
			n := 0
			for id, consentID := range consentOf {
				if n++; n%2 == 0 {
					if err := tx.Bucket(bucketConsents).Delete(consentKey(consentID, uuid.MustParse(id))); err != nil {
						return err
					}
				}
			}
			return tx.Bucket(bucketMeta).Delete(keyIndexed)
		},
	}
	for name, older := range cases {
		t.Run(name, func(t *testing.T) {
			path, ids := MustLoggedFile(t, 25)
			consentOf := map[string]uuid.UUID{}
			MustTamper(t, path, func(tx *bolt.Tx) error {
				for _, id := range ids {
					sr, err := splitRecord(tx.Bucket(bucketRecords).Get(recordKey(id)))
					if err != nil {
						return err
					}
					consentOf[id] = sr.consentID
				}
				return older(tx, consentOf)
			})
			defer func(n int) { indexBatch = n }(indexBatch)
			indexBatch = 10 // three transactions of records

			s := MustOpen(t, path)
			for _, id := range ids {
				records, err := s.RecordsByConsent(context.Background(), consentOf[id].String())
				if err != nil || len(records) != 1 || records[0].ID != id {
					t.Fatalf("the records of consent %s: %d, %v; want record %s", consentOf[id], len(records), err, id)
				}
			}
			if got := indexKeys(t, s); got != len(ids) {
				t.Errorf("the index holds %d keys, want one for each of the %d records", got, len(ids))
			}
			rows, err := s.Stats(context.Background(), nil, "", "")
			var total int64
			for _, row := range rows {
				total += row.Counters[string(consent.ActionCustom)]
			}
			if err != nil || total != int64(len(ids)) {
				t.Errorf("the counters count %d decisions (%v), want the %d records", total, err, len(ids))
			}
		})
	}
}

// indexKeys returns how many entries the consent index of s holds, in both levels.
func indexKeys(tb testing.TB, s *Store) int {
	tb.Helper()
	var n int
	err := s.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketConsents).Stats().KeyN + tx.Bucket(bucketRecent).Stats().KeyN
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestIndexMerge: while merges move the consent index from its recent level to the
// file's, every record acknowledged is found by its consent id, by lookups running
// beside the appends; afterwards, after a reopen and after a purge, each consent id
// has exactly its records.
func TestIndexMerge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "consent.db")
	s := MustOpen(t, path, MergeAt(8))
	ctx := context.Background()
	visitors := make([]string, 20)
	for i := range visitors {
		visitors[i] = uuid.NewString()
	}
	var mu sync.Mutex
	acked := map[string][]string{} // record ids by consent id
	done := make(chan struct{})
	var lookers, appenders sync.WaitGroup
	lookers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			mu.Lock()
			want := map[string][]string{}
			for k, v := range acked {
				want[k] = slices.Clone(v)
			}
			mu.Unlock()
			for consentID, ids := range want {
				records, err := s.RecordsByConsent(ctx, consentID)
				if err != nil {
					t.Error(err)
					return
				}
				for _, id := range ids {
					if !slices.ContainsFunc(records, func(r *consent.Record) bool { return r.ID == id }) {
						t.Errorf("record %s of %s, acknowledged, not found during the merges", id, consentID)
					}
				}
			}
		}
	})
	for w := range 4 {
		appenders.Go(func() {
			for i := range 25 {
				r := storetest.NewRecord(t, visitors[(w*25+i)%len(visitors)], storetest.Now())
				if _, err := s.Append(ctx, r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[r.ConsentID] = append(acked[r.ConsentID], r.ID)
				mu.Unlock()
			}
		})
	}
	appenders.Wait()
	wait.MustUntil(t, "the merges are done", func() (bool, string) {
		n := s.recent.size()
		return n < s.mergeAt, fmt.Sprintf("%d entries in the recent level", n)
	})
	close(done)
	lookers.Wait()

	mustFind := func(when string, s *Store, want map[string][]string) {
		t.Helper()
		for consentID, ids := range want {
			var got []string
			for _, r := range storetest.MustRecordsByConsent(t, s, consentID) {
				got = append(got, r.ID)
			}
			if slices.Sort(got); !slices.Equal(got, slices.Sorted(slices.Values(ids))) {
				t.Errorf("%s: the records of %s are %v, want %v", when, consentID, got, ids)
			}
		}
		if n, total := indexKeys(t, s), countAll(want); n != total {
			t.Errorf("%s: the index holds %d entries, want %d", when, n, total)
		}
	}
	mustFind("merged", s, acked)
	s.Close()
	s = MustOpen(t, path, MergeAt(8))
	mustFind("reopened", s, acked)

	// A purge of every record but the last 3: some in each level.
	all := storetest.MustRecords(t, s)
	cutoff := all[len(all)-3].RecordedAt
	if _, err := s.Purge(ctx, map[string]time.Time{all[0].Site: cutoff}); err != nil {
		t.Fatal(err)
	}
	kept := map[string][]string{}
	for _, r := range all {
		if !r.RecordedAt.Before(cutoff) {
			kept[r.ConsentID] = append(kept[r.ConsentID], r.ID)
		}
	}
	for _, v := range visitors {
		if kept[v] == nil {
			kept[v] = nil // found with no records
		}
	}
	mustFind("purged", s, kept)
}

func countAll(m map[string][]string) int {
	n := 0
	for _, ids := range m {
		n += len(ids)
	}
	return n
}

// TestIndexVerified: verification says which record the consent index lacks, or
// that it holds entries of no record, and RebuildIndex mends it.
func TestIndexVerified(t *testing.T) {
	tests := map[string]struct {
		tamper func(tx *bolt.Tx, recordID, consentID uuid.UUID) error
		want   string
	}{
		"a record missing": {func(tx *bolt.Tx, recordID, consentID uuid.UUID) error {
			if err := tx.Bucket(bucketRecent).Delete(recordID[:]); err != nil {
				return err
			}
			return tx.Bucket(bucketConsents).Delete(consentKey(consentID, recordID))
		}, "is not in the consent index"},
		"an entry of no record": {func(tx *bolt.Tx, _, _ uuid.UUID) error {
			return tx.Bucket(bucketConsents).Put(consentKey(uuid.New(), uuid.New()), nil)
		}, "holds 13 entries for 12 records"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			path, ids := MustLoggedFile(t, 12)
			target := uuid.MustParse(ids[5])
			MustTamper(t, path, func(tx *bolt.Tx) error {
				sr, err := splitRecord(tx.Bucket(bucketRecords).Get(target[:]))
				if err != nil {
					return err
				}
				return tt.tamper(tx, target, sr.consentID)
			})
			v, err := VerifyFile(context.Background(), path, testVerifier(t))
			if err != nil || v.OK || !strings.Contains(v.Problem, tt.want) || !strings.Contains(v.Problem, "consentd reindex") {
				t.Fatalf("VerifyFile = %+v, %v; want it to say the index %s, and what to run", v, err, tt.want)
			}
			if n, err := RebuildIndex(path); err != nil || n != 12 {
				t.Fatalf("RebuildIndex = %d, %v; want 12 records", n, err)
			}
			if v, err := VerifyFile(context.Background(), path, testVerifier(t)); err != nil || !v.OK {
				t.Errorf("after RebuildIndex: %+v, %v; want OK", v, err)
			}
		})
	}
}

// TestIndexMergeCutShort: a merge cut short between its chunks leaves entries in
// both levels; the store verifies, finds every record by its consent id, and the
// next merge finishes the move.
func TestIndexMergeCutShort(t *testing.T) {
	path, ids := MustLoggedFile(t, 12)
	consentOf := map[string]string{} // by record id
	// What the chunks before the cut wrote: every recent entry in bucketConsents too.
	MustTamper(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecent).ForEach(func(k, v []byte) error {
			consentOf[uuid.UUID(k).String()] = uuid.UUID(v).String()
			return tx.Bucket(bucketConsents).Put(consentKey(uuid.UUID(v), uuid.UUID(k)), nil)
		})
	})
	if v, err := VerifyFile(context.Background(), path, testVerifier(t)); err != nil || !v.OK {
		t.Fatalf("a merge cut short: %+v, %v; want OK", v, err)
	}
	s, err := Open(path, Log("", storetest.Keys()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.mergeIndex(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		r, err := s.RecordsByConsent(context.Background(), consentOf[id])
		if err != nil || len(r) != 1 || r[0].ID != id {
			t.Fatalf("records of the consent of %s after the merge: %d, %v", id, len(r), err)
		}
	}
	var recent int
	if err := s.view(func(tx *bolt.Tx) error { recent = tx.Bucket(bucketRecent).Stats().KeyN; return nil }); err != nil || recent != 0 {
		t.Errorf("after the next merge %d entries are left in the recent level (%v), want none", recent, err)
	}
}
