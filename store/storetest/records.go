package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"

	"github.com/google/uuid"
)

// RunRecords runs the behaviours of a RecordStore: appends, reads, filters, erasure, retention and receipts.
func RunRecords(t *testing.T, newStore Factory) {
	t.Helper()
	run(t, newStore, []behaviour{
		{"RoundTrip", testRoundTrip},
		{"OrderWithinConsent", testOrderWithinConsent},
		{"UnknownConsent", testUnknownConsent},
		{"DurableAcrossReopen", testDurableAcrossReopen},
		{"ConcurrentAppends", testConcurrentAppends},
		{"AppendAfterClose", testAppendAfterClose},
		{"CloseTwice", testCloseTwice},
		{"CancelledContext", testCancelledContext},
		{"DuplicateID", testDuplicateID},
		{"Records", testRecords},
		{"Erase", testErase},
		{"Purge", testPurge},
		{"Receipts", testReceipts},
		{"NDJSON", testNDJSON},
	})
}

func testRoundTrip(t *testing.T, open func() consent.Store) {
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

func testOrderWithinConsent(t *testing.T, open func() consent.Store) {
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

func testUnknownConsent(t *testing.T, open func() consent.Store) {
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

func testDurableAcrossReopen(t *testing.T, open func() consent.Store) {
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

func testConcurrentAppends(t *testing.T, open func() consent.Store) {
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

func testAppendAfterClose(t *testing.T, open func() consent.Store) {
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

func testCloseTwice(t *testing.T, open func() consent.Store) {
	s := MustOpen(t, open)
	MustAppend(t, s, NewRecord(t, MustNewID(t), Now()))
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
}

func testCancelledContext(t *testing.T, open func() consent.Store) {
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

func testDuplicateID(t *testing.T, open func() consent.Store) {
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
func testRecords(t *testing.T, open func() consent.Store) {
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

// testErase: an erasure removes IP prefix, user agent and URL from every record of
// the consent id (on the sites it names, if any), keeps everything else, touches no
// other visitor, and can be repeated.
func testErase(t *testing.T, open func() consent.Store) {
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

// testPurge: a purge removes exactly the records of the sites it names that are older
// than each site's time, from every way of reading them; other sites' records stay;
// what remains verifies, also after appends and a reopen; a second purge finds nothing.
func testPurge(t *testing.T, open func() consent.Store) {
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
	mustHold := func(t *testing.T, s consent.Store, kept []string) {
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
		if _, n, _, err := consent.AppendNDJSON(ctx, s, consent.Filter{}, "", 1000, nil); err != nil || n != len(kept) {
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

// testReceipts: a receipt verifies with the published keys alone, holds the bytes of
// the snapshot its record names (none if none is stored), and the receipts read back
// later, after a reopen and an erasure, prove their records in the newest tree.
func testReceipts(t *testing.T, open func() consent.Store) {
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

// testNDJSON: the export's lines hold, page by page, exactly the records Records
// returns for the same filter, each a JSON object that decodes to the record, with
// quotes, commas, control and non-ASCII characters intact, and an erased record
// without what identified its visitor: through the store's own AppendNDJSON if it
// has one, and through the encoding of consent.AppendNDJSON without it.
func testNDJSON(t *testing.T, open func() consent.Store) {
	s := MustOpen(t, open)
	ctx := context.Background()
	base := Now().Add(-time.Hour)
	MustPutSnapshot(t, s, NewRecord(t, uuid.NewString(), base))
	for i := range 25 {
		at := base.Add(time.Duration(i) * time.Minute)
		r := NewRecord(t, uuid.NewString(), at)
		r.ID = IDAt(t, at)
		r.Language = []string{"de", "fr"}[i%2]
		r.UserAgent = "Agent \"quoted\", with commas; ünïcödé \u2028 \x01 " + fmt.Sprint(i)
		MustAppend(t, s, r)
		if i == 3 {
			if _, err := s.Erase(ctx, r.ConsentID, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, records := range map[string]consent.RecordStore{
		"store":             s,
		"without fast path": struct{ consent.RecordStore }{s},
	} {
		t.Run(name, func(t *testing.T) {
			for _, f := range []consent.Filter{{}, {Language: "fr"}, {From: base.Add(5 * time.Minute), To: base.Add(20 * time.Minute)}} {
				mustExportRecords(t, records, f)
			}
		})
	}
}

// mustExportRecords fails t unless the NDJSON export of s holds what Records
// returns for f, paging 4 records at a time.
func mustExportRecords(t *testing.T, s consent.RecordStore, f consent.Filter) {
	t.Helper()
	ctx := context.Background()
	var want, got []*consent.Record
	for after := ""; ; {
		page, err := s.Records(ctx, f, after, 4)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, page...)
		if len(page) < 4 {
			break
		}
		after = page[len(page)-1].ID
	}
	for after := ""; ; {
		buf, n, last, err := consent.AppendNDJSON(ctx, s, f, after, 4, []byte("kept"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(strings.TrimPrefix(string(buf), "kept"), "\n"), "\n")
		if n == 0 {
			break
		}
		if len(lines) != n {
			t.Fatalf("AppendNDJSON said %d records and appended %d lines", n, len(lines))
		}
		for _, line := range lines {
			r := new(consent.Record)
			if err := json.Unmarshal([]byte(line), r); err != nil {
				t.Fatalf("a line is not a JSON record: %v\n%s", err, line)
			}
			got = append(got, r)
		}
		if last != got[len(got)-1].ID {
			t.Errorf("AppendNDJSON's last id is %s, its last line's %s", last, got[len(got)-1].ID)
		}
		if n < 4 {
			break
		}
		after = last
	}
	if len(got) != len(want) {
		t.Fatalf("filter %+v: %d lines, want %d records", f, len(got), len(want))
	}
	for i, r := range want {
		if got[i].Receipt != nil || got[i].LogIndex != r.LogIndex {
			t.Errorf("record %s: the line has log index %d and receipt %v, want %d and none", r.ID, got[i].LogIndex, got[i].Receipt, r.LogIndex)
		}
		MustEqualRecord(t, got[i], r)
	}
}
