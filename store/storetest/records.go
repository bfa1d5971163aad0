package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"

	"github.com/google/uuid"
)

// RunRecords runs the behaviours of appends and reads: round trips, order,
// durability, concurrency, duplicates and filters.
func RunRecords[S Records](t *testing.T, newStore Factory[S]) {
	t.Helper()
	run(t, newStore, []behaviour[S]{
		{"RoundTrip", testRoundTrip[S]},
		{"OrderWithinConsent", testOrderWithinConsent[S]},
		{"UnknownConsent", testUnknownConsent[S]},
		{"DurableAcrossReopen", testDurableAcrossReopen[S]},
		{"ConcurrentAppends", testConcurrentAppends[S]},
		{"AppendAfterClose", testAppendAfterClose[S]},
		{"CloseTwice", testCloseTwice[S]},
		{"CancelledContext", testCancelledContext[S]},
		{"DuplicateID", testDuplicateID[S]},
		{"Records", testRecords[S]},
	})
}

func testRoundTrip[S Records](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	at := Now()
	tests := []struct {
		name   string
		change func(r *consent.Record)
	}{
		{"Plain", func(*consent.Record) {}},
		{"NonASCII", func(r *consent.Record) {
			r.URL = "https://bücher.example/straße/日本語/ünïcødé"
			r.UserAgent = "Mozilla/5.0 (Ünïcødé; 日本語) Gecko/20100101 Firefox/128.0 🍪"
			r.Language = "de-CH"
		}},
		{"QuotesAndEscapes", func(r *consent.Record) {
			r.URL = `https://shop.example/a"b'c\d/<script>&amp;`
			r.UserAgent = "agent \"quoted\" 'single' back\\slash\ttab\nnewline \u2028 \x00nul"
		}},
		{"Refusal", func(r *consent.Record) {
			r.Action = consent.ActionRejectAll
			r.Choices = consent.Choices{
				Categories: map[string]bool{"necessary": true, "analytics": false},
				Partners:   map[string]bool{"matomo": false},
			}
			r.GPC = true
			r.Surface = "gpc"
			r.IPPrefix = "2001:db8:1234::/48"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewRecord(t, MustNewID(t), at)
			tt.change(r)
			want := *r
			MustAppend(t, s, r)
			got := MustRecordsByConsent(t, s, r.ConsentID)
			if len(got) != 1 {
				t.Fatalf("got %d records, want 1", len(got))
			}
			MustEqualRecord(t, got[0], &want)
		})
	}
}

func testOrderWithinConsent[S Records](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	consentID, otherID := MustNewID(t), MustNewID(t)
	base := Now()

	// Ids are taken in one order, timestamps given in another: the order is by
	// RecordedAt first, and by ID only between records of the same instant.
	offsets := []time.Duration{3 * time.Second, 0, 2 * time.Second, 2 * time.Second, time.Second, 2 * time.Second}
	var want []*consent.Record
	for _, d := range offsets {
		want = append(want, NewRecord(t, consentID, base.Add(d)))
	}
	slices.SortStableFunc(want, compareRecords)

	// Appended newest first, with other consent ids before, between and after: none
	// may leak into the result.
	MustAppend(t, s, NewRecord(t, otherID, base))
	for i := len(offsets) - 1; i >= 0; i-- {
		MustAppend(t, s, copyRecord(want[i]))
		MustAppend(t, s, NewRecord(t, MustNewID(t), base))
	}
	MustAppend(t, s, NewRecord(t, otherID, base.Add(time.Second)))

	got := MustRecordsByConsent(t, s, consentID)
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		MustEqualRecord(t, got[i], want[i])
	}
	if n := len(MustRecordsByConsent(t, s, otherID)); n != 2 {
		t.Errorf("other consent id: got %d records, want 2", n)
	}
}

func testUnknownConsent[S Records](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	MustAppend(t, s, NewRecord(t, MustNewID(t), Now()))
	got, err := s.RecordsByConsent(context.Background(), MustNewID(t))
	if err != nil {
		t.Fatalf("RecordsByConsent: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("got %d records, want none", len(got))
	}
}

func testDurableAcrossReopen[S Records](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	consentID := MustNewID(t)
	var want []*consent.Record
	for i := range 5 {
		r := NewRecord(t, consentID, Now().Add(time.Duration(i)*time.Millisecond))
		want = append(want, copyRecord(r))
		MustAppend(t, s, r)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = MustOpen(t, open)
	got := MustRecordsByConsent(t, s, consentID)
	if len(got) != len(want) {
		t.Fatalf("after reopen: got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		MustEqualRecord(t, got[i], want[i])
	}
	// The reopened store takes writes too.
	r := NewRecord(t, consentID, Now().Add(time.Second))
	MustAppend(t, s, r)
	if n := len(MustRecordsByConsent(t, s, consentID)); n != len(want)+1 {
		t.Fatalf("after append on reopened store: got %d records, want %d", n, len(want)+1)
	}
}

func testConcurrentAppends[S Records](t *testing.T, open func() S) {
	const writers, perWriter = 64, 50
	s := MustOpen(t, open)
	consentIDs := make([]string, writers)
	for i := range consentIDs {
		consentIDs[i] = MustNewID(t)
	}

	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			base := Now()
			for i := range perWriter {
				r, err := newRecord(consentIDs[w], base.Add(time.Duration(i)*time.Microsecond))
				if err == nil {
					_, err = s.Append(context.Background(), r)
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d, record %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	for w, consentID := range consentIDs {
		got := MustRecordsByConsent(t, s, consentID)
		if len(got) != perWriter {
			t.Errorf("writer %d: got %d records, want %d", w, len(got), perWriter)
			continue
		}
		seen := make(map[string]bool, len(got))
		for i, r := range got {
			if r.ConsentID != consentID {
				t.Errorf("writer %d: record %s has consent id %s", w, r.ID, r.ConsentID)
			}
			if seen[r.ID] {
				t.Errorf("writer %d: record %s comes back twice", w, r.ID)
			}
			seen[r.ID] = true
			if i > 0 && compareRecords(got[i-1], r) > 0 {
				t.Errorf("writer %d: record %d (%s) comes before record %d (%s)", w, i-1, got[i-1].ID, i, r.ID)
			}
		}
	}
}

func testAppendAfterClose[S Records](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r := NewRecord(t, MustNewID(t), Now())
	_, err := s.Append(context.Background(), r)
	if !errors.Is(err, consent.ErrUnavailable) {
		t.Fatalf("Append after Close: got %v, want an error wrapping consent.ErrUnavailable", err)
	}

	s = MustOpen(t, open)
	if n := len(MustRecordsByConsent(t, s, r.ConsentID)); n != 0 {
		t.Fatalf("record appended after Close was stored (%d records)", n)
	}
}

func testCloseTwice[S Records](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	MustAppend(t, s, NewRecord(t, MustNewID(t), Now()))
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
}

func testCancelledContext[S Records](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := NewRecord(t, MustNewID(t), Now())
	if _, err := s.Append(ctx, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: got %v, want an error wrapping context.Canceled", err)
	}
	if n := len(MustRecordsByConsent(t, s, r.ConsentID)); n != 0 {
		t.Fatalf("Append with a cancelled context stored %d records", n)
	}
}

func testDuplicateID[S Records](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	first := NewRecord(t, MustNewID(t), Now())
	want := copyRecord(first)
	MustAppend(t, s, first)

	// Records are append-only: a second record with the same id must not replace the
	// first, whatever its consent id.
	for _, consentID := range []string{first.ConsentID, MustNewID(t)} {
		dup := copyRecord(first)
		dup.ConsentID = consentID
		dup.Action = consent.ActionWithdraw
		if _, err := s.Append(context.Background(), dup); err == nil {
			t.Errorf("Append of an existing record id with consent id %s: got nil error", consentID)
		}
		if consentID != first.ConsentID {
			if n := len(MustRecordsByConsent(t, s, consentID)); n != 0 {
				t.Errorf("duplicate record stored under consent id %s", consentID)
			}
		}
	}
	got := MustRecordsByConsent(t, s, first.ConsentID)
	if len(got) != 1 {
		t.Fatalf("got %d records, want 1", len(got))
	}
	MustEqualRecord(t, got[0], want)

	// Appends of one new id at once, as one batch may hold them: one is stored.
	twin := NewRecord(t, MustNewID(t), Now())
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { _, errs[i] = s.Append(context.Background(), copyRecord(twin)) })
	}
	wg.Wait()
	if stored := len(slices.DeleteFunc(errs, func(err error) bool { return err != nil })); stored != 1 {
		t.Errorf("%d of %d appends of one id at once succeeded, want 1", stored, len(errs))
	}
	if n := len(MustRecordsByConsent(t, s, twin.ConsentID)); n != 1 {
		t.Errorf("%d records stored for appends of one id at once, want 1", n)
	}
}

// testRecords: filters select exactly the matching records, and paging with the
// last id gives each of them once, in a stable order.
func testRecords[S Records](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	ctx := context.Background()
	base := Now().Add(-48 * time.Hour).Truncate(time.Hour)
	var all []*consent.Record
	for i := range 120 {
		at := base.Add(time.Duration(i) * 17 * time.Minute)
		r := NewRecord(t, uuid.NewString(), at)
		r.ID = IDAt(t, at)
		r.Site = []string{"a.example", "b.example", "c.example"}[i%3]
		r.Action = []consent.Action{consent.ActionAcceptAll, consent.ActionRejectAll}[i%2]
		r.Language = []string{"de", "fr", "en", "nl"}[i%4]
		r.Fingerprint = []string{"fp1", "fp2"}[i/60]
		MustAppend(t, s, r)
		all = append(all, r)
	}
	from, to := base.Add(5*time.Hour), base.Add(20*time.Hour)
	filters := []struct {
		name string
		f    consent.Filter
	}{
		{"all", consent.Filter{}},
		{"site", consent.Filter{Sites: []string{"b.example"}}},
		{"two sites", consent.Filter{Sites: []string{"a.example", "c.example"}}},
		{"time range", consent.Filter{From: from, To: to}},
		{"action", consent.Filter{Action: consent.ActionRejectAll}},
		{"fingerprint and language", consent.Filter{Fingerprint: "fp2", Language: "fr"}},
		{"everything", consent.Filter{Sites: []string{"a.example"}, From: from, To: to, Action: consent.ActionAcceptAll}},
	}
	for _, tt := range filters {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			for _, r := range all {
				if tt.f.Match(r) {
					want = append(want, r.ID)
				}
			}
			var got []string
			after := ""
			for range 200 {
				page, err := s.Records(ctx, tt.f, after, 7)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range page {
					got = append(got, r.ID)
				}
				if len(page) < 7 {
					break
				}
				after = page[len(page)-1].ID
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %d records, want %d (in record id order, each once)", len(got), len(want))
			}
		})
	}
	if _, err := s.Records(ctx, consent.Filter{}, "nope", 3); consent.ErrorCode(err) != consent.EInvalid {
		t.Errorf("a bad cursor: err = %v, want code invalid", err)
	}
}
