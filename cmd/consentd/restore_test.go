package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRestore: consentd restore puts a verified backup where no store is, under a
// name its log never had, linked to the backup's last checkpoint: the restored store
// serves under it, and still extends the checkpoints kept of the old name. It
// refuses, leaving nothing behind, a store in the way, the backup's name or one it
// had before, and a backup that does not verify.
func TestRestore(t *testing.T) {
	m := MustServedDir(t, 3)
	dir := t.TempDir()
	backup := MustWriteFile(t, filepath.Join(dir, "consent-2026-12-01T031500Z.db"), []byte(MustRead(t, m.DBPath)))
	kept := MustWriteFile(t, filepath.Join(dir, "checkpoint-000000000003"), MustLastCheckpoint(t, m))
	damaged := MustWriteFile(t, filepath.Join(dir, "damaged.db"), MustRandom(64<<10))

	restored := &Main{DBPath: filepath.Join(t.TempDir(), "consent.db"), KeysDir: m.KeysDir, ConfigPath: m.ConfigPath, TokensPath: m.TokensPath}
	out := MustRun(t, "restore", "--from", backup, "--db", restored.DBPath, "--keys", m.KeysDir, "--origin", "consent.test/log-2")
	if !strings.Contains(out, restored.DBPath+": restored from "+backup+", with the log "+testOrigin+" up to size 3; new records go to the log consent.test/log-2") {
		t.Errorf("restore said:\n%s", out)
	}
	if got := MustList(t, filepath.Dir(restored.DBPath)); !slices.Equal(got, []string{"consent.db"}) {
		t.Errorf("the restore left %q, want the store alone", got)
	}
	if fi, err := os.Stat(restored.DBPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the restored store: %v, %v; want mode 0600", fi, err)
	}
	// It serves under the new name, which it keeps, and records again.
	addr, stop := MustStart(t, NewMainOn(t, restored, io.Discard))
	if doc := MustPublicKeys(t, addr); doc.Origin != "consent.test/log-2" {
		t.Errorf("the restored store publishes the keys of %q, want consent.test/log-2", doc.Origin)
	}
	MustPost(t, addr)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if out := MustRun(t, "verify", "--db", restored.DBPath, "--keys", m.KeysDir, "--checkpoint", kept); !strings.Contains(out, "OK, log consent.test/log-2: 4 leaves") || !strings.Contains(out, "the log extends 1 archived checkpoint") {
		t.Errorf("verify of the restored store against the old name's checkpoint:\n%s", out)
	}

	tests := []struct {
		name string
		args []string // after --keys
		in   bool     // a store in the way at --db
		want string
	}{
		{"over a store", []string{"--from", backup, "--origin", "consent.test/log-3"}, true, "exists: consentd restore never replaces a store"},
		{"the backup's own name", []string{"--from", backup, "--origin", testOrigin}, false, "the backup's log is " + testOrigin + " already: a restored store starts a new origin"},
		{"a name the backup's log had before", []string{"--from", restored.DBPath, "--origin", testOrigin}, false, `the store's log is or was named "` + testOrigin + `"`},
		{"no origin", []string{"--from", backup}, false, "--from BACKUP and --origin NEW_ORIGIN are required"},
		{"no backup", []string{"--origin", "consent.test/log-3"}, false, "--from BACKUP and --origin NEW_ORIGIN are required"},
		{"an origin that is no log's name", []string{"--from", backup, "--origin", "log 3"}, false, `--origin "log 3" is not a log's name`},
		{"a damaged backup", []string{"--from", damaged, "--origin", "consent.test/log-3"}, false, "the file is damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := t.TempDir()
			db := filepath.Join(to, "consent.db")
			if tt.in {
				MustWriteFile(t, db, []byte("a store"))
			}
			before := MustList(t, to)
			_, _, err := runConsentd(append([]string{"restore", "--db", db, "--keys", m.KeysDir}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v, want one sentence with %q", err, tt.want)
			}
			if after := MustList(t, to); !slices.Equal(after, before) {
				t.Errorf("a refused restore changed %s: %q, was %q", to, after, before)
			}
		})
	}
}

// MustLastCheckpoint returns the signed note of the last checkpoint of m's store,
// which no consentd serves.
func MustLastCheckpoint(tb testing.TB, m *Main) []byte {
	tb.Helper()
	s := MustOpenStore(tb, m)
	cp, err := s.LastCheckpoint(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return cp.Signed
}
