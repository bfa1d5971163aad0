package storetest

import (
	"context"
	"io"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
)

// Stats is a whole RecordStore and its counters.
type Stats interface {
	consent.RecordStore
	consent.StatsStore
	io.Closer
}

// RunStats runs the behaviours of the counters of decisions.
func RunStats[S Stats](t *testing.T, newStore Factory[S]) {
	t.Helper()
	run(t, newStore, []behaviour[S]{
		{"Counters", testCounters[S]},
	})
}

// testCounters: each record appended is counted under its site, day, language and
// banner, with its action, GPC signal and each choice; a query takes the sites and
// days it names; the counters outlive a reopen, an erasure and a purge; a rebuild
// counts the records held again, while appends go on, and finds the same.
func testCounters[S Stats](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	ctx := context.Background()
	now := Now()
	today, yesterday := now.Format(time.DateOnly), now.Add(-24*time.Hour).Format(time.DateOnly)
	want := consent.Counts{}
	add := func(site string, at time.Time, edit func(r *consent.Record)) *consent.Record {
		r := NewRecord(t, uuid.NewString(), at)
		r.ID, r.Site = IDAt(t, at), site
		edit(r)
		MustAppend(t, s, r)
		want.Count(r)
		return r
	}
	same := func(*consent.Record) {}
	add("a.example", now.Add(-24*time.Hour), same)
	add("a.example", now.Add(-24*time.Hour), func(r *consent.Record) {
		r.Action, r.GPC = consent.ActionGPC, true
		r.Choices.Categories["analytics"], r.Choices.Partners["matomo"] = false, false
	})
	add("a.example", now, func(r *consent.Record) { r.Language = "de" })
	erased := add("b.example", now, func(r *consent.Record) { r.Action = consent.ActionWithdraw })
	add("0.example", now, same) // a site whose key sorts before any day

	mustCount := func(when string, sites []string, from, to string, keys ...consent.StatsKey) {
		t.Helper()
		rows, err := s.Stats(ctx, sites, from, to)
		if err != nil {
			t.Fatalf("%s: Stats(%v, %q, %q): %v", when, sites, from, to, err)
		}
		got := consent.Counts{}
		for _, row := range rows {
			if got[row.Key] != nil {
				t.Errorf("%s: the counters of %+v came twice", when, row.Key)
			}
			got[row.Key] = row.Counters
		}
		wanted := consent.Counts{}
		for _, k := range keys {
			wanted[k] = want[k]
		}
		if !maps.EqualFunc(got, wanted, maps.Equal) {
			t.Errorf("%s: Stats(%v, %q, %q) =\n%v\nwant\n%v", when, sites, from, to, got, wanted)
		}
	}
	key := func(site, day, language string) consent.StatsKey {
		return consent.StatsKey{Site: site, Day: day, Language: language, Fingerprint: erased.Fingerprint}
	}
	all := []consent.StatsKey{key("a.example", yesterday, "fr"), key("a.example", today, "de"), key("b.example", today, "fr"), key("0.example", today, "fr")}
	mustCount("appended", nil, "", "", all...)
	mustCount("appended", nil, today, "", all[1:]...)
	mustCount("appended", []string{"a.example"}, today, "", all[1])
	mustCount("appended", []string{"a.example", "c.example"}, "", today, all[0])
	mustCount("appended", []string{"b.example"}, yesterday, today)

	if _, err := s.Erase(ctx, erased.ConsentID, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = MustOpen(t, open)
	mustCount("erased and reopened", nil, "", "", all...)

	// Appends during the rebuild: each counted once, whether before, during or after.
	during := make([]*consent.Record, 20)
	for i := range during {
		during[i] = NewRecord(t, uuid.NewString(), now)
		during[i].Site = "c.example"
		want.Count(during[i])
	}
	var appending sync.WaitGroup
	appending.Go(func() {
		for _, r := range during {
			if _, err := s.Append(ctx, r); err != nil {
				t.Errorf("an append during the rebuild: %v", err)
			}
		}
	})
	n, err := s.RebuildStats(ctx)
	appending.Wait()
	if err != nil || n < 5 || n > 5+len(during) {
		t.Fatalf("RebuildStats = %d, %v; want the 5 records and those appended before it ended", n, err)
	}
	all = append(all, key("c.example", today, "fr"))
	mustCount("rebuilt while appending", nil, "", "", all...)

	if n, err := s.Purge(ctx, map[string]time.Time{"a.example": now.Add(-time.Hour)}); err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want 2", n, err)
	}
	mustCount("purged", nil, "", "", all...)
	want = consent.Counts{}
	for _, r := range MustRecords(t, s) {
		want.Count(r)
	}
	if n, err := s.RebuildStats(ctx); err != nil || n != 3+len(during) {
		t.Fatalf("RebuildStats after the purge = %d, %v; want the %d records left", n, err, 3+len(during))
	}
	mustCount("rebuilt after the purge", nil, "", "", all[1:]...)
}
