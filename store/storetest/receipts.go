package storetest

import (
	"context"
	"testing"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
)

// testReceipts: a receipt verifies with the published keys alone, holds the bytes of
// the snapshot its record names (none if none is stored), and the receipts read back
// later, after a reopen and an erasure, prove their records in the newest tree.
func testReceipts[S Erasure](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	ctx := context.Background()
	shown := NewRecord(t, uuid.NewString(), Now())
	snap := MustPutSnapshot(t, s, shown)
	unknown := NewRecord(t, uuid.NewString(), Now())
	unknown.Fingerprint = "sha256:never-stored"
	want := []*consent.Record{shown, unknown}
	for _, r := range want {
		MustAppend(t, s, r)
	}
	first, err := s.RecordsByConsent(ctx, shown.ConsentID)
	if err != nil || len(first) != 1 {
		t.Fatalf("RecordsByConsent: %d records, %v", len(first), err)
	}
	verified := MustVerifyReceipt(t, first[0].Receipt, shown)
	if verified.Snapshot == nil || verified.Snapshot.Fingerprint != snap.Fingerprint || verified.Snapshot.Controller != snap.Controller {
		t.Errorf("the receipt's snapshot is %+v, want the one stored", verified.Snapshot)
	}
	if got := MustRecordsByConsent(t, s, unknown.ConsentID)[0].Receipt; got.Snapshot != "" {
		t.Errorf("a record of a fingerprint never stored has a snapshot in its receipt: %s", got.Snapshot)
	}
	// Stored after the record, the snapshot was not what its visitor was shown.
	MustPutSnapshot(t, s, unknown)
	if got := MustRecordsByConsent(t, s, unknown.ConsentID)[0]; got.Receipt.Snapshot != "" {
		t.Errorf("a snapshot stored after its record is in the record's receipt")
	} else {
		MustVerifyReceipt(t, got.Receipt, unknown)
	}

	for range 5 {
		MustAppend(t, s, NewRecord(t, uuid.NewString(), Now()))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = MustOpen(t, open)
	if _, err := s.Erase(ctx, shown.ConsentID, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range want {
		got := MustRecordsByConsent(t, s, r.ConsentID)[0]
		if v := MustVerifyReceipt(t, got.Receipt, r); v.Checkpoint.Size != 7 {
			t.Errorf("record %s is proved in the tree of %d leaves, want the newest, of 7", r.ID, v.Checkpoint.Size)
		}
	}
}
