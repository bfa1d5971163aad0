package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/scrape"
	"github.com/mixvoip/consentd/internal/wait"
)

// MustFiles creates empty files named names in dir.
func MustFiles(tb testing.TB, dir string, names ...string) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// MustList returns the names in dir, sorted.
func MustList(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestScheduledBackupAndRestore: consentd serve --backup-dir takes a copy of the
// store at start when the directory holds none of this interval, verifies it and
// keeps the newest --backup-keep copies, leaving other files alone; the copy,
// restored in place of a lost store (under a new origin), starts, verifies and
// records again.
func TestScheduledBackupAndRestore(t *testing.T) {
	m := MustServedDir(t, 30)
	dir := filepath.Join(t.TempDir(), "backups")
	old := []string{"consent-2020-01-01T000000Z.db", "consent-2020-01-02T000000Z.db", "consent-2020-01-03T000000Z.db"}
	others := []string{"consent-2019-12-31T000000Z.db.unverified", "notes.txt"}
	MustFiles(t, dir, append(old, others...)...)

	backedUp := make(chan error, 1)
	var copyPath string
	m2 := NewMainOn(t, m, io.Discard, "--backup-dir", dir, "--backup-keep", "2")
	m2.backedUp = func(path string, err error) {
		copyPath = path
		backedUp <- err
	}
	addr, stop := MustStart(t, m2)
	select {
	case err := <-backedUp:
		if err != nil {
			t.Fatalf("backup: %v", err)
		}
	case <-wait.Timeout(t):
		t.Fatal("no backup was taken at start")
	}
	fi, err := os.Stat(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	metrics := MustScrape(t, addr)
	for _, want := range []string{`consentd_backups_total{result="success"} 1`, `consentd_backups_total{result="failure"} 0`, fmt.Sprintf("consentd_backup_last_size_bytes %d", fi.Size())} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics do not say %s", want)
		}
	}
	if strings.Contains(metrics, "consentd_backup_last_success_timestamp_seconds 0\n") {
		t.Error("metrics say no backup succeeded")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := append([]string{old[2], filepath.Base(copyPath)}, others...)
	slices.Sort(want)
	if got := MustList(t, dir); !slices.Equal(got, want) {
		t.Errorf("backup directory holds %q, want %q", got, want)
	}
	if fi, err := os.Stat(copyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("copy: %v, mode %v; want mode 0600", err, fi.Mode())
	}

	// The store is lost; the copy takes its place, under a new name of its log.
	if err := os.Rename(m.DBPath, m.DBPath+".lost"); err != nil {
		t.Fatal(err)
	}
	MustRun(t, "restore", "--from", copyPath, "--db", m.DBPath, "--keys", m.KeysDir, "--origin", "consent.test/log-2")
	if out := MustRun(t, "verify", "--db", m.DBPath, "--keys", m.KeysDir); !strings.Contains(out, "OK, log consent.test/log-2: 30 leaves") {
		t.Fatalf("verify of the restored store: %s", out)
	}
	// With the same backups: the copy is fresh, so none is due; the metrics give its
	// time, not "none since the start".
	addr, stop = MustStart(t, NewMainOn(t, m, io.Discard, "--backup-dir", dir, "--backup-keep", "2"))
	stamp, _ := strings.CutSuffix(strings.TrimPrefix(filepath.Base(copyPath), "consent-"), ".db")
	taken, err := time.Parse("2006-01-02T150405Z", stamp)
	if err != nil {
		t.Fatal(err)
	}
	wait.MustUntil(t, "the metrics give the time of the copy", func() (bool, string) {
		v, _ := scrape.Value(MustScrape(t, addr), "consentd_backup_last_success_timestamp_seconds")
		return v == float64(taken.Unix()), fmt.Sprint(v)
	})
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if status, err := postConsent(addr, cfg, "voxbi.com", consent.ActionAcceptAll, uuid.NewString()); err != nil || status != http.StatusCreated {
		t.Fatalf("post on the restored store: %d, %v", status, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if out := MustRun(t, "verify", "--db", m.DBPath, "--keys", m.KeysDir); !strings.Contains(out, "31 records verify") {
		t.Errorf("verify after recording on the restored store: %s", out)
	}
	if got := MustList(t, dir); !slices.Equal(got, want) {
		t.Errorf("after the restart, the backup directory holds %q, want %q as before", got, want)
	}
}

// TestBackupDirKeepsFailedCopyApart: a copy that fails its check never takes a
// copy's name: it is kept as .unverified, the newest --keep of those stay, and no good
// copy is pruned for it; a check cut short keeps nothing.
func TestBackupDirKeepsFailedCopyApart(t *testing.T) {
	d := backupDir{path: t.TempDir(), keep: 1}
	MustFiles(t, d.path, "consent-2020-01-01T000000Z.db", "consent-2020-01-02T000000Z.db.unverified")
	write := func(w io.Writer) (int64, error) { n, err := io.WriteString(w, "not a store"); return int64(n), err }
	broken := errors.New("broken link")
	fail := func(string) error { return broken }
	path, size, err := d.save(context.Background(), time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC), write, fail)
	if !errors.Is(err, broken) || size != 11 {
		t.Fatalf("save: %d bytes, %v; want 11 and the check's error", size, err)
	}
	want := []string{"consent-2020-01-01T000000Z.db", "consent-2026-12-02T130000Z.db.unverified"}
	if got := MustList(t, d.path); !slices.Equal(got, want) || filepath.Base(path) != want[1] {
		t.Errorf("directory holds %q (save returned %s), want %q", got, path, want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cut := func(string) error { cancel(); return context.Canceled }
	if _, _, err := d.save(ctx, time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC), write, cut); !errors.Is(err, context.Canceled) {
		t.Fatalf("save with the check cut short: %v", err)
	}
	if got := MustList(t, d.path); !slices.Equal(got, want) {
		t.Errorf("after a check cut short, the directory holds %q, want %q", got, want)
	}
}

func TestNextBackup(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name           string
		newest, failed time.Time
		every, retry   time.Duration
		want           time.Time
	}{
		{"no copy yet: at once", time.Time{}, time.Time{}, day, backupRetry, time.Time{}.Add(day)},
		{"a day after the newest copy, a restart in between changes nothing", at, time.Time{}, day, backupRetry, at.Add(day)},
		{"after a failure, a retry after 15 minutes", at.Add(-2 * day), at, day, backupRetry, at.Add(backupRetry)},
		{"after a copy that did not verify, the next a day later", at.Add(-2 * day), at, day, day, at.Add(day)},
		{"a failure long ago does not delay", at, at.Add(-day), day, backupRetry, at.Add(day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextBackup(tt.newest, tt.failed, tt.every, tt.retry); !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
