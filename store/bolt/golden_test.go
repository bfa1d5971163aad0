package bolt

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mixvoip/consentd/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden store in testdata")

// goldenStore is a store of record format 5 and leaf format 1, written once and kept:
// every store format must verify, and open, forever.
const goldenStore = "testdata/store-format5.db"

// The golden store's visitors: one kept, one erased, one purged.
const (
	goldenKept   = "0d6f1e9a-4c1b-4f6e-9a55-6d0c2f1b7e01"
	goldenErased = "0d6f1e9a-4c1b-4f6e-9a55-6d0c2f1b7e02"
	goldenPurged = "0d6f1e9a-4c1b-4f6e-9a55-6d0c2f1b7e03"
)

// writeGoldenStore writes the golden store: records of three visitors, a snapshot,
// an erasure and a purge.
func writeGoldenStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "golden.db")
	s := MustOpen(t, path)
	ctx := context.Background()
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i, consentID := range []string{goldenKept, goldenErased, goldenPurged, goldenKept, goldenErased} {
		r := storetest.NewRecord(t, consentID, base.Add(time.Duration(i)*time.Hour))
		if consentID == goldenPurged {
			r.RecordedAt = base.Add(-30 * 24 * time.Hour)
		}
		r.ID = storetest.IDAt(t, r.RecordedAt)
		if i == 0 {
			storetest.MustPutSnapshot(t, s, r)
		}
		storetest.MustAppend(t, s, r)
	}
	if _, err := s.Erase(ctx, goldenErased, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Purge(ctx, map[string]time.Time{"shop.example": base.Add(-24 * time.Hour)}); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	copyFile(t, path, goldenStore, 0o644)
}

func copyFile(tb testing.TB, from, to string, mode os.FileMode) {
	tb.Helper()
	in, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// TestGoldenStore: the store written by the first consentd with the log verifies
// with the published keys alone, opens, reads back with receipts that verify, and
// takes new records.
func TestGoldenStore(t *testing.T) {
	if *update {
		writeGoldenStore(t)
	}
	ctx := context.Background()
	v, err := VerifyFile(ctx, goldenStore, testVerifier(t))
	if err != nil || !v.OK || v.Leaves != 5 || v.Records != 4 || v.Erased != 2 || v.Purged != 1 || v.Checkpoints != 1 {
		t.Fatalf("VerifyFile = %+v, %v; want OK with 5 leaves, 4 records, 2 erased, 1 purged", v, err)
	}

	path := filepath.Join(t.TempDir(), "consent.db")
	copyFile(t, goldenStore, path, 0o600)
	s := MustOpen(t, path, Log("", storetest.Keys()))
	for consentID, want := range map[string]int{goldenKept: 2, goldenErased: 2, goldenPurged: 0} {
		records := storetest.MustRecordsByConsent(t, s, consentID)
		if len(records) != want {
			t.Errorf("visitor %s: %d records, want %d", consentID, len(records), want)
		}
		for _, r := range records {
			storetest.MustVerifyReceipt(t, r.Receipt, r)
			if erased := r.IPPrefix == ""; erased != (consentID == goldenErased) {
				t.Errorf("record %s: IP prefix %q", r.ID, r.IPPrefix)
			}
		}
	}
	storetest.MustAppend(t, s, storetest.NewRecord(t, uuid.NewString(), storetest.Now()))
	if v, err := s.Verify(ctx); err != nil || !v.OK || v.Leaves != 6 {
		t.Errorf("after an append: %+v, %v", v, err)
	}
}
