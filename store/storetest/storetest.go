// Package storetest is the behavioural suite every consent.Store backend must pass:
// each backend's test file calls Run with a Factory and nothing more.
package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/translog"
)

// Factory prepares a fresh, empty location for one subtest (a directory, a database
// schema) and returns a function that opens a store there. Every call of open must
// return a new consent.Store on that same location, so records appended through one
// store are read back through the next after the first was closed; open fails tb
// itself when the store cannot be opened. Run closes every store it opens, sometimes
// twice: Close must be safe to call more than once. The store's log must be named
// Origin and signed with Keys.
type Factory func(tb testing.TB) (open func() consent.Store)

// Run runs every behaviour a consent.Store must have against the stores newStore opens.
func Run(t *testing.T, newStore Factory) {
	t.Helper()
	tests := []struct {
		name string
		test func(t *testing.T, open func() consent.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"OrderWithinConsent", testOrderWithinConsent},
		{"UnknownConsent", testUnknownConsent},
		{"DurableAcrossReopen", testDurableAcrossReopen},
		{"ConcurrentAppends", testConcurrentAppends},
		{"AppendAfterClose", testAppendAfterClose},
		{"CloseTwice", testCloseTwice},
		{"CancelledContext", testCancelledContext},
		{"DuplicateID", testDuplicateID},
		{"Snapshots", testSnapshots},
		{"Audit", testAudit},
		{"AuditPurge", testAuditPurge},
		{"Records", testRecords},
		{"Erase", testErase},
		{"Purge", testPurge},
		{"Receipts", testReceipts},
		{"NDJSON", testNDJSON},
		{"LastCheckpoint", testLastCheckpoint},
		{"Tree", testTree},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.test(t, newStore(t))
		})
	}
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

// MustOpen opens a store with open and closes it when tb ends.
func MustOpen(tb testing.TB, open func() consent.Store) consent.Store {
	tb.Helper()
	s := open()
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// MustAppend appends r to s, fails tb on any error, and returns r's receipt once it
// verifies as r's with the log's keys (see MustVerifyReceipt).
func MustAppend(tb testing.TB, s consent.Store, r *consent.Record) *consent.Receipt {
	tb.Helper()
	receipt, err := s.Append(context.Background(), r)
	if err != nil {
		tb.Fatalf("Append %s: %v", r.ID, err)
	}
	MustVerifyReceipt(tb, receipt, r)
	return receipt
}

// MustVerifyReceipt fails tb unless receipt verifies with the log's published keys
// alone and proves r's decision, leaf and time: not its identifying part, which a
// receipt never holds.
func MustVerifyReceipt(tb testing.TB, receipt *consent.Receipt, r *consent.Record) *translog.Verified {
	tb.Helper()
	if receipt == nil {
		tb.Fatalf("record %s: no receipt", r.ID)
	}
	v, err := Keys().LogVerifier(Origin)
	if err != nil {
		tb.Fatal(err)
	}
	verified, err := v.VerifyReceipt(receipt)
	if err != nil {
		tb.Fatalf("record %s: %v", r.ID, err)
	}
	want := copyRecord(r)
	want.IPPrefix, want.UserAgent, want.URL, want.Receipt, want.LogIndex = "", "", "", nil, verified.Index
	MustEqualRecord(tb, verified.Record, want)
	return verified
}

// MustRecordsByConsent returns the records of consentID in s and fails tb on any error.
func MustRecordsByConsent(tb testing.TB, s consent.Store, consentID string) []*consent.Record {
	tb.Helper()
	recs, err := s.RecordsByConsent(context.Background(), consentID)
	if err != nil {
		tb.Fatalf("RecordsByConsent %s: %v", consentID, err)
	}
	return recs
}

// MustNewID returns a new UUIDv7 string, the form of record and consent ids.
func MustNewID(tb testing.TB) string {
	tb.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		tb.Fatalf("uuid: %v", err)
	}
	return id.String()
}

// Now returns the current time as stores keep it: UTC, to the microsecond, the
// precision of a PostgreSQL timestamptz.
func Now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// MustPutSnapshot stores the snapshot of what the visitor of r, a record from
// NewRecord, was shown, as the server does before it serves a banner, and returns it.
func MustPutSnapshot(tb testing.TB, s consent.Store, r *consent.Record) *consent.Snapshot {
	tb.Helper()
	snap := &consent.Snapshot{Site: recordSite.Key, Fingerprint: r.Fingerprint, CreatedAt: Now(),
		Controller: recordSite.Controller, Policy: recordSite.Policy}
	if err := s.PutSnapshot(context.Background(), snap); err != nil {
		tb.Fatal(err)
	}
	return snap
}

// recordSite is the site of NewRecord's records, as their receipts name it.
var recordSite = &consent.Site{
	Key:        "shop.example",
	Controller: consent.Controller{Name: "Shop S.A.", Address: "1, rue de l'Exemple, Luxembourg", Jurisdiction: "LU"},
	Policy:     consent.Policy{URL: "https://shop.example/privacy", Version: "2026-01-15"},
}

// NewRecord returns a record of consentID recorded at, with a new UUIDv7 id and every
// field set, so a round trip that drops a field shows.
func NewRecord(tb testing.TB, consentID string, at time.Time) *consent.Record {
	tb.Helper()
	r, err := newRecord(consentID, at)
	if err != nil {
		tb.Fatalf("new record: %v", err)
	}
	return r
}

// newRecord is NewRecord for goroutines that may not call tb.Fatal.
func newRecord(consentID string, at time.Time) (*consent.Record, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	r := &consent.Record{
		ID:        id.String(),
		ConsentID: consentID,
		Site:      "shop.example",
		Action:    consent.ActionCustom,
		Choices: consent.Choices{
			Categories: map[string]bool{"necessary": true, "analytics": true, "marketing": false},
			Partners:   map[string]bool{"matomo": true, "meta-pixel": false},
		},
		Fingerprint:   "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		PolicyVersion: "2026-01-15",
		Language:      "fr",
		Surface:       "banner",
		GPC:           false,
		URL:           "https://shop.example/checkout",
		IPPrefix:      "203.0.113.0/24",
		UserAgent:     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36",
		RecordedAt:    at,
		ExpiresAt:     at.AddDate(0, 6, 0),
	}
	return r, nil
}

// Origin is the name of the log of every store the suite opens.
const Origin = "storetest.example/log"

// logKey is made from a fixed seed: every test binary signs with the same key.
var logKey = func() *proof.Key {
	seed := sha256.Sum256([]byte("storetest log"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	return &proof.Key{ID: proof.KeyID(priv.Public().(ed25519.PublicKey)), Private: priv, Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}()

// Keys returns the keys that sign the log of every store the suite opens.
func Keys() *proof.Keyring { return proof.NewKeyring(logKey) }

// MustEqualRecord fails tb unless got equals want field by field, times compared with
// Equal so that a backend may return them in another location, and its log index and
// receipt left out.
func MustEqualRecord(tb testing.TB, got, want *consent.Record) {
	tb.Helper()
	if !got.RecordedAt.Equal(want.RecordedAt) {
		tb.Errorf("record %s: RecordedAt = %v, want %v", want.ID, got.RecordedAt, want.RecordedAt)
	}
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		tb.Errorf("record %s: ExpiresAt = %v, want %v", want.ID, got.ExpiresAt, want.ExpiresAt)
	}
	g, w := copyRecord(got), copyRecord(want)
	g.RecordedAt, g.ExpiresAt = time.Time{}, time.Time{}
	w.RecordedAt, w.ExpiresAt = time.Time{}, time.Time{}
	// Where a record is in the log, and its proof, are the store's to say: the
	// receipt is checked on its own (MustVerifyReceipt).
	g.LogIndex, g.Receipt, w.LogIndex, w.Receipt = 0, nil, 0, nil
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("record %s:\n got  %+v\n want %+v", want.ID, *g, *w)
	}
}

func copyRecord(r *consent.Record) *consent.Record {
	c := *r
	c.Choices.Categories = maps.Clone(r.Choices.Categories)
	c.Choices.Partners = maps.Clone(r.Choices.Partners)
	return &c
}

// compareRecords orders records as RecordsByConsent must: by RecordedAt, then by ID
// (UUIDv7 strings sort as their bytes).
func compareRecords(a, b *consent.Record) int {
	if c := a.RecordedAt.Compare(b.RecordedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// testSnapshots: a snapshot is kept per site and fingerprint, the first one stays,
// and it survives a reopen.
func testSnapshots(t *testing.T, open func() consent.Store) {
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

// testAudit: audit entries come back in order, a page at a time, after a reopen.
func testAudit(t *testing.T, open func() consent.Store) {
	s := MustOpen(t, open)
	ctx := context.Background()
	var ids []string
	for i := range 7 {
		e := &consent.AuditEntry{ID: MustNewID(t), At: Now(), Token: "dpo", Method: "GET", Path: fmt.Sprintf("/v1/dpo/records?page=%d", i), Status: 200}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	// A call on record before it acts, then with its outcome: one entry.
	begun := &consent.AuditEntry{ID: MustNewID(t), At: Now(), Token: "dpo", Method: "DELETE", Path: "/v1/dpo/consents/x"}
	if err := s.AppendAudit(ctx, begun); err != nil {
		t.Fatal(err)
	}
	done := *begun
	done.Status = 200
	if err := s.AppendAudit(ctx, &done); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, begun.ID)
	s.Close()
	s = MustOpen(t, open)
	var got []string
	var last *consent.AuditEntry
	after := ""
	for range 10 {
		page, err := s.Audit(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			got = append(got, e.ID)
			last = e
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(got, ids) {
		t.Errorf("audit pages = %v, want %v", got, ids)
	}
	if last == nil || last.Status != 200 {
		t.Errorf("the entry stored again: %+v, want its outcome 200", last)
	}
	if _, err := s.Audit(ctx, "nope", 3); consent.ErrorCode(err) != consent.EInvalid {
		t.Errorf("a bad cursor: err = %v, want code invalid", err)
	}
}

// testAuditPurge: the audit log's retention removes exactly the entries made before
// its limit, aggregated refusals keep every field, and what is kept survives a
// reopen.
func testAuditPurge(t *testing.T, open func() consent.Store) {
	s := MustOpen(t, open)
	ctx := context.Background()
	limit := Now().Add(-30 * 24 * time.Hour)
	var kept []*consent.AuditEntry
	for i := range 25 {
		at := limit.Add(time.Duration(i-10) * 24 * time.Hour) // 10 before the limit, 15 after
		e := &consent.AuditEntry{ID: IDAt(t, at), At: at, Client: "203.0.113.0/24", Method: "GET", Path: "/v1/dpo/verify", Status: 401,
			Count: i + 2, Last: at.Add(time.Minute)}
		if i%2 == 0 {
			e.Token, e.Status, e.Count, e.Last = "dpo", 200, 0, time.Time{}
			e.Path, e.Subject = "/v1/dpo/consents/{consent_id}", consent.ConsentDigest(uuid.NewString())
		}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		if !at.Before(limit) {
			kept = append(kept, e)
		}
	}
	n, err := s.PurgeAudit(ctx, limit)
	if err != nil || n != 10 {
		t.Fatalf("PurgeAudit = %d, %v; want the 10 entries before the limit", n, err)
	}
	s.Close()
	s = MustOpen(t, open)
	got, err := s.Audit(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(kept) {
		t.Fatalf("%d entries kept, want %d", len(got), len(kept))
	}
	for i, e := range got {
		if w := kept[i]; e.ID != w.ID || !e.At.Equal(w.At) || e.Token != w.Token || e.Client != w.Client || e.Path != w.Path ||
			e.Subject != w.Subject || e.Status != w.Status || e.Count != w.Count || !e.Last.Equal(w.Last) {
			t.Errorf("entry %d = %+v, want %+v", i, e, w)
		}
	}
	if n, err := s.PurgeAudit(ctx, limit); err != nil || n != 0 {
		t.Errorf("a second purge = %d, %v; want nothing more", n, err)
	}
	// A retention of a century: nothing is that old.
	if n, err := s.PurgeAudit(ctx, Now().AddDate(-100, 0, 0)); err != nil || n != 0 {
		t.Errorf("a purge before 1970 = %d, %v; want nothing", n, err)
	}
}

// IDAt returns a UUIDv7 of the millisecond t, as the server makes for a record it
// receives at t.
func IDAt(tb testing.TB, t time.Time) string {
	tb.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		tb.Fatal(err)
	}
	ms := uint64(t.UnixMilli())
	for i := range 6 {
		id[i] = byte(ms >> (40 - 8*i))
	}
	return id.String()
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
		if _, n, _, err := s.AppendNDJSON(ctx, consent.Filter{}, "", 1000, nil); err != nil || n != len(kept) {
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
// without what identified its visitor.
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
	for _, f := range []consent.Filter{{}, {Language: "fr"}, {From: base.Add(5 * time.Minute), To: base.Add(20 * time.Minute)}} {
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
			buf, n, last, err := s.AppendNDJSON(ctx, f, after, 4, []byte("kept"))
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
}

// testLastCheckpoint: none before the first record; then, after every append, the
// newest, signed by the log's key, of a tree of all records, which extends every
// earlier one, across a reopen.
func testLastCheckpoint(t *testing.T, open func() consent.Store) {
	ctx := context.Background()
	s := MustOpen(t, open)
	if _, err := s.LastCheckpoint(ctx); consent.ErrorCode(err) != consent.ENotFound {
		t.Errorf("a new store's last checkpoint: %v, want code not_found", err)
	}
	v, err := Keys().LogVerifier(Origin)
	if err != nil {
		t.Fatal(err)
	}
	var older []*consent.Checkpoint
	for i := range 6 {
		MustAppend(t, s, NewRecord(t, uuid.NewString(), Now()))
		if i == 3 {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = MustOpen(t, open)
		}
		cp, err := s.LastCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		opened, err := v.Open(cp.Signed)
		if err != nil || opened.Size != int64(i+1) || opened.Root != cp.Root || cp.Origin != Origin {
			t.Fatalf("after %d records: last checkpoint %+v opens as %+v, %v", i+1, cp, opened, err)
		}
		read := translog.Hashes(ctx, s)
		for _, old := range older {
			p, err := translog.ProveConsistency(read, old.Size, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := translog.VerifyConsistency(p, old, cp); err != nil {
				t.Errorf("size %d → %d: %v", old.Size, cp.Size, err)
			}
		}
		older = append(older, cp)
	}
}

// testTree: the hashes a store serves are its tree's, and an index beyond the tree
// is not found.
func testTree(t *testing.T, open func() consent.Store) {
	ctx := context.Background()
	s := MustOpen(t, open)
	for range 3 {
		MustAppend(t, s, NewRecord(t, uuid.NewString(), Now()))
	}
	cp, err := s.LastCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read := translog.Hashes(ctx, s)
	if root, err := tlog.TreeHash(cp.Size, read); err != nil || root != cp.Root {
		t.Errorf("the served hashes give root %v, %v; the checkpoint says %v", root, err, tlog.Hash(cp.Root))
	}
	if _, err := s.ReadHashes(ctx, []int64{tlog.StoredHashCount(cp.Size)}); consent.ErrorCode(err) != consent.ENotFound {
		t.Errorf("a hash beyond the tree: %v, want code not_found", err)
	}
}
