package storetest

import (
	"context"
	"reflect"
	"testing"

	consent "github.com/mixvoip/consentd"
)

// RunSnapshots runs the behaviours of a SnapshotStore.
func RunSnapshots[S Snapshots](t *testing.T, newStore Factory[S]) {
	t.Helper()
	run(t, newStore, []behaviour[S]{
		{"Snapshots", testSnapshots[S]},
	})
}

// testSnapshots: a snapshot is kept per site and fingerprint, the first one stays,
// and it survives a reopen.
func testSnapshots[S Snapshots](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	ctx := context.Background()
	first := &consent.Snapshot{
		Site: "shop.example", Fingerprint: "421ff2071a8b7fd2", CreatedAt: Now(),
		Controller: consent.Controller{Name: "Shop S.A.", Jurisdiction: "LU"},
		Policy:     consent.Policy{URL: "https://shop.example/privacy", Version: "2026-01-15"},
		Languages:  []string{"fr", "de"},
		Texts:      map[string]map[string]string{"fr": {"title": "Vos choix « cookies »"}, "de": {"title": "Ihre Wahl"}},
		Categories: []consent.Category{{ID: "technical", Required: true, Name: consent.Text{"fr": "Nécessaires"}}},
		Partners:   []consent.Partner{{ID: "meta-pixel", Enabled: true, Name: "Meta Pixel", Cookies: []consent.Cookie{{Name: "_fbp", Lifetime: "90 days"}}}},
		BundleHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	}
	if err := s.PutSnapshot(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := *first
	second.Policy.Version = "changed"
	if err := s.PutSnapshot(ctx, &second); err != nil {
		t.Fatal(err)
	}
	other := *first
	other.Site = "other.example"
	if err := s.PutSnapshot(ctx, &other); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = MustOpen(t, open)
	got, err := s.Snapshot(ctx, first.Site, first.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, first.CreatedAt)
	}
	got.CreatedAt = first.CreatedAt
	if !reflect.DeepEqual(got, first) {
		t.Errorf("snapshot:\n got  %+v\n want %+v (the first one, never overwritten)", got, first)
	}
	if o, err := s.Snapshot(ctx, other.Site, other.Fingerprint); err != nil || o.Site != other.Site {
		t.Errorf("the same fingerprint for another site: %v, %v", o, err)
	}
	if _, err := s.Snapshot(ctx, first.Site, "0000000000000000"); consent.ErrorCode(err) != consent.ENotFound {
		t.Errorf("unknown fingerprint: err = %v, want code not_found", err)
	}
}
