package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
)

// testPurge: a purge removes exactly the records of the sites it names that are older
// than each site's time, from every way of reading them; other sites' records stay;
// what remains verifies, also after appends and a reopen; a second purge finds nothing.
func testPurge[S Erasure](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	ctx := context.Background()
	now := Now()
	day := 24 * time.Hour
	before := map[string]time.Time{"a.example": now.Add(-10 * day), "b.example": now.Add(-20 * day)}
	if n, err := s.Purge(ctx, before); err != nil || n != 0 {
		t.Fatalf("Purge of an empty store = %d, %v; want 0", n, err)
	}
	if v, err := s.Verify(ctx); err != nil || !v.OK {
		t.Fatalf("an empty store after a purge does not verify: %+v, %v", v, err)
	}
	var purged, kept []string // consent ids of the purged records, ids of the kept ones
	add := func(site, consentID string, age time.Duration) string {
		at := now.Add(-age)
		r := NewRecord(t, consentID, at)
		r.ID, r.Site = IDAt(t, at), site
		MustAppend(t, s, r)
		if cutoff, ok := before[site]; ok && at.Before(cutoff) {
			purged = append(purged, r.ConsentID)
		} else {
			kept = append(kept, r.ID)
		}
		return r.ID
	}
	for i := range 30 {
		add([]string{"a.example", "b.example", "c.example"}[i%3], uuid.NewString(), time.Duration(30-i)*day)
	}
	// A returning visitor: the old decision goes, the new one stays.
	returning := uuid.NewString()
	add("a.example", returning, 15*day)
	newer := add("a.example", returning, time.Hour)
	if _, err := s.Erase(ctx, returning, nil); err != nil {
		t.Fatal(err)
	}
	slices.Sort(kept)

	if n, err := s.Purge(ctx, before); err != nil || n != len(purged) {
		t.Fatalf("Purge = %d, %v; want %d records", n, err, len(purged))
	}
	mustHold := func(t *testing.T, s S, kept []string) {
		t.Helper()
		page, err := s.Records(ctx, consent.Filter{}, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range page {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, kept) {
			t.Errorf("records after the purge: got %d, want the %d kept", len(got), len(kept))
		}
		if _, n, _, err := s.AppendExport(ctx, consent.Filter{}, "", 1000, consent.ExportNDJSON, nil); err != nil || n != len(kept) {
			t.Errorf("export after the purge: %d records, %v; want the %d kept", n, err, len(kept))
		}
		if recs := MustRecordsByConsent(t, s, returning); len(recs) != 1 || recs[0].ID != newer {
			t.Errorf("the returning visitor has %d records after the purge, want the newer one", len(recs))
		}
		if recs := MustRecordsByConsent(t, s, purged[0]); len(recs) != 0 {
			t.Errorf("a visitor whose only record was purged still has %d records", len(recs))
		}
		v, err := s.Verify(ctx)
		if err != nil || !v.OK || v.Records != len(kept) {
			t.Errorf("after the purge: %+v, %v; want OK with %d records", v, err, len(kept))
		}
	}
	mustHold(t, s, kept)
	if n, err := s.Purge(ctx, before); err != nil || n != 0 {
		t.Errorf("a second Purge = %d, %v; want 0", n, err)
	}

	later := NewRecord(t, uuid.NewString(), Now())
	MustAppend(t, s, later)
	kept = append(kept, later.ID)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = MustOpen(t, open)
	mustHold(t, s, kept)
}
