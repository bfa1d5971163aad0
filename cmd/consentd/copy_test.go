package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/move"
)

// TestCopyCommand: consentd copy moves a served bbolt store into a new PostgreSQL
// database, where consentd serve goes on recording, and from there into a new bbolt
// file, which verifies with every leaf. Each source then refuses to serve, and to be
// copied again, in one sentence that names where it went.
func TestCopyCommand(t *testing.T) {
	m := MustServedDir(t, 3)
	url := pgtest.NewDatabase(t) // not migrated: copy does it
	out := MustRun(t, "copy", "--from", m.DBPath, "--to", url, "--keys", m.KeysDir)
	mustSay(t, out, "the copy to PostgreSQL", m.DBPath+": copied to "+url+": the log "+testOrigin+" of 3 leaves (3 records, 4 snapshots, 0 audit entries",
		"the copy verifies", m.DBPath+" is marked as moved and takes no more records: serve "+url)
	err := runRefused(t, serveArgs(m)...)
	if err == nil || !strings.Contains(err.Error(), "the store was copied to "+url) || strings.Contains(err.Error(), "\n") {
		t.Errorf("serve of the moved bbolt store: %v; want one sentence saying where it went", err)
	}

	onPostgres := NewMainOn(t, m, io.Discard, "--db", url)
	addr, stop := MustStart(t, onPostgres)
	MustPost(t, addr)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	back := filepath.Join(t.TempDir(), "consent.db")
	out = MustRun(t, "copy", "--from", url, "--to", back, "--keys", m.KeysDir)
	mustSay(t, out, "the copy back to bbolt", "of 4 leaves (4 records", "marked as moved")
	if out := MustRun(t, "verify", "--db", back, "--keys", m.KeysDir); !strings.Contains(out, "OK, log "+testOrigin+": 4 leaves") {
		t.Errorf("verify of the copy back:\n%s", out)
	}
	if fi, err := os.Stat(back); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the copy back: %v, %v; want mode 0600", fi, err)
	}
	err = runRefused(t, serveArgs(m, "--db", url)...)
	if err == nil || !strings.Contains(err.Error(), "the store was copied to "+back) {
		t.Errorf("serve of the moved PostgreSQL store: %v; want it refused, naming the copy", err)
	}

	full := filepath.Join(t.TempDir(), "consent.db")
	MustWriteFile(t, full, []byte("a file"))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a moved store", []string{"--from", m.DBPath, "--to", filepath.Join(t.TempDir(), "again.db")}, "the store was copied to " + url},
		{"into a file that exists", []string{"--from", back, "--to", full}, "a file is there already"},
		{"into a database with a store", []string{"--from", back, "--to", url}, "the database holds a store already"},
		{"a store onto itself", []string{"--from", back, "--to", back}, "--from and --to are the same store"},
		{"no destination", []string{"--from", back}, "--from STORE and --to STORE are required"},
		{"a password on the command line", []string{"--from", back, "--to", "postgres://consentd:secret@localhost/consent"}, "--to holds a password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := MustList(t, filepath.Dir(back))
			_, _, err := runConsentd(append([]string{"copy", "--keys", m.KeysDir}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "secret") {
				t.Errorf("got %v, want one sentence with %q", err, tt.want)
			}
			if after := MustList(t, filepath.Dir(back)); !slices.Equal(after, before) {
				t.Errorf("a refused copy changed %s: %q, was %q", filepath.Dir(back), after, before)
			}
		})
	}
	// A refused copy leaves its source as it was: serving.
	addr, stop = MustStart(t, NewMainOn(t, m, io.Discard, "--db", back))
	MustPost(t, addr)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestCopyCompletesAnInterruptedCopy: a copy interrupted after its source was marked
// as moved, before the copy was marked as complete, leaves neither store served; the
// same consentd copy, run again, completes it.
func TestCopyCompletesAnInterruptedCopy(t *testing.T) {
	m := MustServedDir(t, 2)
	to := filepath.Join(t.TempDir(), "consent.db")
	keys, err := proof.LoadKeyring(m.KeysDir)
	if err != nil {
		t.Fatal(err)
	}
	source, err := filepath.Abs(m.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	_, err = move.Move(t.Context(),
		func(copy func(move.Source) error) error { return bolt.Move(m.DBPath, to, copy) },
		func(fill func(move.Destination) error) error { return bolt.Fill(to, source, fill) },
		keys, func(*move.Copied) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{m.DBPath, to} {
		if err := runRefused(t, serveArgs(m, "--db", db)...); !errors.Is(err, move.ErrMoved) {
			t.Errorf("serve %s: %v; want it refused", db, err)
		}
	}
	out := MustRun(t, "copy", "--from", m.DBPath, "--to", to, "--keys", m.KeysDir)
	mustSay(t, out, "the copy run again", "the copy to "+to+" is complete")
	addr, stop := MustStart(t, NewMainOn(t, m, io.Discard, "--db", to))
	MustPost(t, addr)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
