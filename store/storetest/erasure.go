package storetest

import (
	"context"
	"testing"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
)

// RunErasure runs the behaviours of erasure, on a visitor's request (Erase) and by
// retention (Purge, retention.go), and of what receipts and exports show after it
// (receipts.go, export.go): what identified a visitor is gone, and the log still
// verifies.
func RunErasure[S Erasure](t *testing.T, newStore Factory[S]) {
	t.Helper()
	run(t, newStore, []behaviour[S]{
		{"Erase", testErase[S]},
		{"Purge", testPurge[S]},
		{"Receipts", testReceipts[S]},
		{"Export", testExport[S]},
	})
}

// testErase: an erasure removes IP prefix, user agent and URL from every record of
// the consent id (on the sites it names, if any), keeps everything else, touches no
// other visitor, and can be repeated.
func testErase[S Erasure](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	ctx := context.Background()
	id, other := uuid.NewString(), uuid.NewString()
	var want []*consent.Record
	for range 3 {
		r := NewRecord(t, id, Now())
		MustAppend(t, s, r)
		want = append(want, r)
	}
	kept := NewRecord(t, other, Now())
	MustAppend(t, s, kept)

	if n, err := s.Erase(ctx, id, nil); err != nil || n != 3 {
		t.Fatalf("Erase = %d, %v; want 3 records", n, err)
	}
	if n, err := s.Erase(ctx, id, nil); err != nil || n != 0 {
		t.Errorf("a second Erase = %d, %v; want 0", n, err)
	}
	got := MustRecordsByConsent(t, s, id)
	for i, r := range got {
		w := copyRecord(want[i])
		w.IPPrefix, w.UserAgent, w.URL = "", "", ""
		MustEqualRecord(t, r, w)
	}
	MustEqualRecord(t, MustRecordsByConsent(t, s, other)[0], kept)
	if v, err := s.Verify(ctx); err != nil || !v.OK {
		t.Errorf("after an erasure the chain does not verify: %+v, %v", v, err)
	}

	// Limited to sites: the records of the consent id elsewhere keep what identifies
	// them.
	shared := uuid.NewString()
	onA, onB := NewRecord(t, shared, Now()), NewRecord(t, shared, Now())
	onA.Site, onB.Site = "a.example", "b.example"
	MustAppend(t, s, onA)
	MustAppend(t, s, onB)
	if n, err := s.Erase(ctx, shared, []string{"b.example", "c.example"}); err != nil || n != 1 {
		t.Fatalf("Erase on b.example = %d, %v; want its 1 record", n, err)
	}
	for _, r := range MustRecordsByConsent(t, s, shared) {
		if erased := r.IPPrefix == "" && r.UserAgent == "" && r.URL == ""; erased != (r.Site == "b.example") {
			t.Errorf("record on %s after an erasure on b.example: %+v", r.Site, r)
		}
	}
}
