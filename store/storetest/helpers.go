package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"maps"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"

	"github.com/google/uuid"

	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/translog"
)

// MustOpen opens a store with open and closes it when tb ends.
func MustOpen[S io.Closer](tb testing.TB, open func() S) S {
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
func MustAppend(tb testing.TB, s interface {
	Append(context.Context, *consent.Record) (*consent.Receipt, error)
}, r *consent.Record) *consent.Receipt {
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
func MustRecordsByConsent(tb testing.TB, s interface {
	RecordsByConsent(context.Context, string) ([]*consent.Record, error)
}, consentID string) []*consent.Record {
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

// MustRecords returns every record of s, up to 1,000.
func MustRecords(tb testing.TB, s interface {
	Records(ctx context.Context, f consent.Filter, after string, limit int) ([]*consent.Record, error)
}) []*consent.Record {
	tb.Helper()
	records, err := s.Records(context.Background(), consent.Filter{}, "", 1000)
	if err != nil {
		tb.Fatal(err)
	}
	return records
}

// MustPutSnapshot stores the snapshot of what the visitor of r, a record from
// NewRecord, was shown, as the server does before it serves a banner, and returns it.
func MustPutSnapshot(tb testing.TB, s consent.SnapshotStore, r *consent.Record) *consent.Snapshot {
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
	Cookie:     consent.CookieSettings{ConsentLifetime: 182 * 24 * time.Hour, RefusalLifetime: 182 * 24 * time.Hour},
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
	d := &consent.Decision{
		Site:      recordSite.Key,
		ConsentID: consentID,
		Action:    consent.ActionCustom,
		Choices: consent.Choices{
			Categories: map[string]bool{"necessary": true, "analytics": true, "marketing": false},
			Partners:   map[string]bool{"matomo": true, "meta-pixel": false},
		},
		Fingerprint: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Language:    "fr",
		Surface:     consent.SurfaceBanner,
		URL:         "https://shop.example/checkout?q=shoes#reviews",
	}
	r := d.Record(recordSite, consent.Arrival{
		RecordID:  id.String(),
		At:        at,
		Client:    netip.MustParseAddr("203.0.113.77"),
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36",
	})
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
