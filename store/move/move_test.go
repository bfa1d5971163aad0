package move_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/move"
	"github.com/mixvoip/consentd/store/postgres"
	"github.com/mixvoip/consentd/store/storetest"
	"github.com/mixvoip/consentd/translog"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// restoredOrigin is the name the source's log goes on under after a restore, so that
// the copy has a link statement to carry.
const restoredOrigin = "restored.storetest.example/log"

// TestCopyBothWays: a bbolt store, with erased and purged records, audit entries,
// snapshots and a link to the name its log had before a restore, is copied to
// PostgreSQL and from there to a new bbolt file. Each copy answers every query as
// the source did, verifies and extends the source's checkpoint, and every receipt
// the first store issued verifies against it; each source takes no more records,
// a consentd still running on it included, and is not copied again.
func TestCopyBothWays(t *testing.T) {
	ctx := context.Background()
	keys := storetest.Keys()
	first := filepath.Join(t.TempDir(), "consent.db")
	consents, receipts := mustFill(t, first)
	source := mustOpenBolt(t, first)
	want := mustContent(t, source, consents)
	if err := source.Close(); err != nil {
		t.Fatal(err)
	}

	url := pgtest.NewDatabase(t)
	if _, err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	copied, err := copyStore(ctx,
		func(copy func(move.Source) error) error { return bolt.Move(first, url, copy) },
		func(fill func(move.Destination) error) error { return postgres.Fill(ctx, url, first, fill) })
	if err != nil {
		t.Fatalf("bbolt to PostgreSQL: %v", err)
	}
	// Served only once complete: until then its source's mark may yet be set back.
	if _, err := postgres.Open(ctx, url, postgres.Options{Keys: keys}); !errors.Is(err, move.ErrMoved) || !strings.Contains(err.Error(), "a copy of "+first) {
		t.Errorf("Open of a copy in progress: %v, want it refused", err)
	}
	if err := postgres.Complete(ctx, url, first); err != nil {
		t.Fatal(err)
	}
	if copied.Records != 10 || copied.Audit != 2 || copied.Snapshots != 1 || copied.Purges != 1 || copied.Links != 1 || copied.Checkpoint.Size != 11 {
		t.Errorf("copied %+v; want 11 leaves, 10 records, 2 audit entries, a snapshot, a purge and a link statement", copied)
	}
	onPostgres := mustOpenPostgres(t, url)
	mustHoldCopy(t, onPostgres, copied, want, consents, receipts)
	mustRefuseAsMoved(t, first, url)

	second := filepath.Join(t.TempDir(), "consent.db")
	copied, err = copyStore(ctx,
		func(copy func(move.Source) error) error { return postgres.Move(ctx, url, second, copy) },
		func(fill func(move.Destination) error) error { return bolt.Fill(second, url, fill) })
	if err != nil {
		t.Fatalf("PostgreSQL to bbolt: %v", err)
	}
	if _, err := bolt.Open(second, bolt.Log("", keys)); !errors.Is(err, move.ErrMoved) {
		t.Errorf("Open of a copy in progress: %v, want it refused", err)
	}
	if err := bolt.Complete(second, url); err != nil {
		t.Fatal(err)
	}
	mustHoldCopy(t, mustOpenBolt(t, second), copied, want, consents, receipts)
	// The consentd that still ran on the source writes nothing more: the copy would
	// miss it.
	_, err = onPostgres.Append(ctx, storetest.NewRecord(t, uuid.NewString(), storetest.Now()))
	if !errors.Is(err, consent.ErrUnavailable) || onPostgres.Ready() == nil {
		t.Errorf("Append to a moved PostgreSQL store still open: %v, ready %v; want it refused", err, onPostgres.Ready())
	}
	for name, write := range map[string]func() error{
		"Erase": func() error { _, err := onPostgres.Erase(ctx, consents[1], nil); return err },
		"Purge": func() error {
			_, err := onPostgres.Purge(ctx, map[string]time.Time{"shop.example": storetest.Now()})
			return err
		},
		"PutSnapshot": func() error {
			return onPostgres.PutSnapshot(ctx, &consent.Snapshot{Site: "other.example", Fingerprint: "f", CreatedAt: storetest.Now()})
		},
		"AppendAudit": func() error {
			return onPostgres.AppendAudit(ctx, &consent.AuditEntry{ID: storetest.MustNewID(t), At: storetest.Now(), Method: "GET", Path: "/v1/stats"})
		},
	} {
		if err := write(); err == nil {
			t.Errorf("%s on a moved PostgreSQL store still open went ahead", name)
		}
	}
	if _, err := postgres.Open(ctx, url, postgres.Options{Keys: keys}); !errors.Is(err, move.ErrMoved) {
		t.Errorf("Open of a moved PostgreSQL store: %v, want it refused as moved", err)
	}
	err = postgres.Move(ctx, url, "elsewhere", func(move.Source) error { return nil })
	if !errors.Is(err, move.ErrMoved) {
		t.Errorf("a second move of a moved PostgreSQL store: %v, want it refused", err)
	}
}

// TestCopyRefused: a copy into a store that is not empty, or one its check refuses,
// fails and leaves the destination as it was, and the source takes records as
// before.
func TestCopyRefused(t *testing.T) {
	ctx := context.Background()
	source := filepath.Join(t.TempDir(), "consent.db")
	mustFill(t, source)
	used := pgtest.NewDatabase(t)
	if _, err := postgres.Migrate(ctx, used); err != nil {
		t.Fatal(err)
	}
	s := mustOpenPostgres(t, used)
	storetest.MustAppend(t, s, storetest.NewRecord(t, uuid.NewString(), storetest.Now()))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(t.TempDir(), "consent.db")
	if err := os.WriteFile(existing, []byte("a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	refuse := func(*move.Copied) error { return errors.New("the copy does not verify") }
	accept := func(*move.Copied) error { return nil }
	refused := filepath.Join(t.TempDir(), "consent.db")
	for name, tt := range map[string]struct {
		fill  func(func(move.Destination) error) error
		check func(*move.Copied) error
	}{
		"a PostgreSQL database with a store": {func(fill func(move.Destination) error) error { return postgres.Fill(ctx, used, source, fill) }, accept},
		"a file that exists":                 {func(fill func(move.Destination) error) error { return bolt.Fill(existing, source, fill) }, accept},
		"a copy its check refuses":           {func(fill func(move.Destination) error) error { return bolt.Fill(refused, source, fill) }, refuse},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := move.Move(ctx, func(copy func(move.Source) error) error { return bolt.Move(source, "there", copy) }, tt.fill, storetest.Keys(), tt.check)
			if err == nil {
				t.Fatal("the copy went ahead")
			}
			s := mustOpenBolt(t, source)
			if _, err := s.Append(ctx, storetest.NewRecord(t, uuid.NewString(), storetest.Now())); err != nil {
				t.Errorf("the source after a copy refused: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The copy its check refused is there, and no consentd serves it, nor copies it
	// on: the source does.
	if _, err := bolt.Open(refused, bolt.Log("", storetest.Keys())); !errors.Is(err, move.ErrMoved) {
		t.Errorf("Open of a copy its check refused: %v, want it refused as a copy in progress", err)
	}
	if err := bolt.Move(refused, "elsewhere", func(move.Source) error { return nil }); !errors.Is(err, move.ErrMoved) {
		t.Errorf("a move of a copy in progress: %v, want it refused", err)
	}
	if got, err := os.ReadFile(existing); err != nil || string(got) != "a file" {
		t.Errorf("the file in the way: %q, %v; want it untouched", got, err)
	}
	if s := mustOpenPostgres(t, used); s.LogSize() != 1 {
		t.Errorf("the database in the way holds %d leaves, want its 1", s.LogSize())
	}
}

// copyStore copies the store that moveFrom gives to the one fill makes, as consentd
// copy does, but for the copy's own verification (mustHoldCopy).
func copyStore(ctx context.Context, moveFrom func(func(move.Source) error) error, fill func(func(move.Destination) error) error) (*move.Copied, error) {
	return move.Move(ctx, moveFrom, fill, storetest.Keys(), func(*move.Copied) error { return nil })
}

// mustFill makes a store at path whose log has every kind of content: records, one
// purged and one consent erased, a snapshot, audit entries, and a link to the name
// its log had before a restore, with records after it. It returns the consent ids
// and the receipts of the records.
func mustFill(tb testing.TB, path string) (consents []string, receipts []*consent.Receipt) {
	tb.Helper()
	ctx := context.Background()
	s := mustOpenBolt(tb, path)
	old := storetest.NewRecord(tb, uuid.NewString(), storetest.Now().Add(-48*time.Hour))
	old.ID = storetest.IDAt(tb, old.RecordedAt)
	storetest.MustPutSnapshot(tb, s, old)
	storetest.MustAppend(tb, s, old)
	for range 3 {
		consentID := uuid.NewString()
		consents = append(consents, consentID)
		for range 2 {
			receipts = append(receipts, storetest.MustAppend(tb, s, storetest.NewRecord(tb, consentID, storetest.Now())))
		}
	}
	if n, err := s.Erase(ctx, consents[0], nil); err != nil || n != 2 {
		tb.Fatalf("Erase = %d, %v", n, err)
	}
	if n, err := s.Purge(ctx, map[string]time.Time{old.Site: storetest.Now().Add(-24 * time.Hour)}); err != nil || n != 1 {
		tb.Fatalf("Purge = %d, %v", n, err)
	}
	for range 2 {
		e := &consent.AuditEntry{ID: storetest.MustNewID(tb), At: storetest.Now(), Token: "dpo", Method: "GET", Path: "/v1/stats", Status: 200}
		if err := s.AppendAudit(ctx, e); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	if _, err := bolt.Reorigin(path, restoredOrigin, storetest.Keys()); err != nil {
		tb.Fatal(err)
	}
	s = mustOpenBolt(tb, path)
	for range 4 {
		r := storetest.NewRecord(tb, consents[2], storetest.Now())
		receipt, err := s.Append(ctx, r)
		if err != nil {
			tb.Fatal(err)
		}
		receipts = append(receipts, receipt)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return consents, receipts
}

// content is what a store answers, as JSON: the records of each consent with their
// receipts, the audit log, the snapshot and the latest checkpoint.
func mustContent(tb testing.TB, s consent.Store, consents []string) string {
	tb.Helper()
	ctx := context.Background()
	var all struct {
		Records    [][]*consent.Record
		Audit      []*consent.AuditEntry
		Snapshot   *consent.Snapshot
		Checkpoint string
	}
	for _, id := range consents {
		all.Records = append(all.Records, storetest.MustRecordsByConsent(tb, s, id))
	}
	var err error
	if all.Audit, err = s.Audit(ctx, "", 100); err != nil {
		tb.Fatal(err)
	}
	r := all.Records[1][0]
	if all.Snapshot, err = s.Snapshot(ctx, r.Site, r.Fingerprint); err != nil {
		tb.Fatal(err)
	}
	cp, err := s.LastCheckpoint(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	all.Checkpoint = string(cp.Signed)
	b, err := json.MarshalIndent(all, "", " ")
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// mustHoldCopy fails tb unless s, a copy, answers as its source did (want), verifies
// and extends the source's checkpoint, and proves every receipt the first source
// issued in its tree.
func mustHoldCopy(tb testing.TB, s consent.Store, copied *move.Copied, want string, consents []string, receipts []*consent.Receipt) {
	tb.Helper()
	ctx := context.Background()
	if got := mustContent(tb, s, consents); got != want {
		tb.Errorf("the copy answers\n%s\nwant\n%s", got, want)
	}
	// The counters are not copied but counted from the records copied.
	counted := consent.Counts{}
	for _, r := range storetest.MustRecords(tb, s) {
		counted.Count(r)
	}
	rows, err := s.Stats(ctx, nil, "", "")
	if err != nil {
		tb.Fatal(err)
	}
	stats := consent.Counts{}
	for _, row := range rows {
		stats[row.Key] = row.Counters
	}
	if !maps.EqualFunc(stats, counted, maps.Equal) || len(stats) == 0 {
		tb.Errorf("the copy's counters: %v, want those of its records: %v", stats, counted)
	}
	v, err := s.Verify(ctx, copied.Checkpoint)
	if err != nil || !v.OK || v.Leaves != 11 || v.Records != 10 || v.Erased != 2 || v.Purged != 1 || v.Archived != 1 {
		tb.Errorf("Verify of the copy: %+v, %v; want OK: 11 leaves, 10 records, 2 erased, 1 purged, extending the source's checkpoint", v, err)
	}
	head, err := s.LastCheckpoint(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	verifier, err := storetest.Keys().LogVerifier(restoredOrigin)
	if err == nil {
		verifier, err = verifier.Continuing(storetest.Origin)
	}
	if err != nil {
		tb.Fatal(err)
	}
	for _, rc := range receipts {
		verified, err := verifier.VerifyReceipt(rc)
		if err != nil {
			tb.Fatal(err)
		}
		p, err := translog.ProveConsistency(translog.Hashes(ctx, s), verified.Checkpoint.Size, head.Size)
		if err == nil {
			err = translog.VerifyConsistency(p, verified.Checkpoint, head)
		}
		if err != nil {
			tb.Errorf("the receipt of leaf %d against the copy: %v", verified.Index, err)
		}
	}
}

// mustRefuseAsMoved fails tb unless the bbolt store at path refuses to open, and to
// be copied again, as moved to to.
func mustRefuseAsMoved(tb testing.TB, path, to string) {
	tb.Helper()
	_, err := bolt.Open(path, bolt.Log("", storetest.Keys()))
	if !errors.Is(err, move.ErrMoved) {
		tb.Errorf("Open of a moved store: %v, want it refused as moved", err)
	} else if want := "the store was copied to " + to; !strings.Contains(err.Error(), want) {
		tb.Errorf("Open of a moved store: %v, want it to say %q", err, want)
	}
	if err := bolt.Move(path, "elsewhere", func(move.Source) error { return nil }); !errors.Is(err, move.ErrMoved) {
		tb.Errorf("a second move of a moved store: %v, want it refused", err)
	}
}

// mustOpenBolt opens the bbolt store at path, made with storetest's origin if new.
func mustOpenBolt(tb testing.TB, path string) *bolt.Store {
	tb.Helper()
	origin := ""
	if _, err := os.Stat(path); err != nil {
		origin = storetest.Origin
	}
	return storetest.MustOpen(tb, func() *bolt.Store {
		s, err := bolt.Open(path, bolt.Log(origin, storetest.Keys()))
		if err != nil {
			tb.Fatal(err)
		}
		return s
	})
}

// mustOpenPostgres opens the store in the database at url, made with storetest's
// origin if new.
func mustOpenPostgres(tb testing.TB, url string) *postgres.Store {
	tb.Helper()
	ctx := context.Background()
	origin := ""
	if found, err := postgres.HasLog(ctx, url); err != nil || !found {
		origin = storetest.Origin
	}
	return storetest.MustOpen(tb, func() *postgres.Store {
		s, err := postgres.Open(ctx, url, postgres.Options{Origin: origin, Keys: storetest.Keys()})
		if err != nil {
			tb.Fatal(err)
		}
		return s
	})
}
