package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// TestRestore: consentd restore puts a verified backup where no store is, under an
// origin other than the backup's, and leaves nothing behind when it refuses or the
// new origin cannot be started. The store's side (reorigin) is stood in for here:
// it checks what the command hands it.
func TestRestore(t *testing.T) {
	m := MustServedDir(t, 3)
	backup := MustWriteFile(t, filepath.Join(t.TempDir(), "consent-2026-12-01T031500Z.db"), []byte(MustRead(t, m.DBPath)))
	damaged := MustWriteFile(t, filepath.Join(t.TempDir(), "damaged.db"), MustRandom(64<<10))
	type call struct {
		data   []byte
		origin string
	}
	// standIn returns a reorigin that notes what it was given, failing with fail.
	standIn := func(calls *[]call, fail error) func(string, string, translog.Keys) (*consent.Checkpoint, error) {
		return func(path, origin string, keys translog.Keys) (*consent.Checkpoint, error) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			*calls = append(*calls, call{data, origin})
			return &consent.Checkpoint{Origin: testOrigin, Size: 3}, fail
		}
	}
	broken := errors.New("the link could not be signed")
	tests := []struct {
		name     string
		args     []string // after --db and --keys
		exists   bool     // a file at --db already
		hook     bool     // reorigin provided
		fail     error    // reorigin's error
		want     string   // the refusal, "" for a restore
		reorigin bool     // whether reorigin must have been called
	}{
		{"a backup under a new origin", []string{"--from", backup, "--origin", "consent.test/log-2"}, false, true, nil, "", true},
		{"the backup's own origin", []string{"--from", backup, "--origin", testOrigin}, false, true, nil, "the backup's log is " + testOrigin + " already: a restored store starts a new origin", false},
		{"over a store", []string{"--from", backup, "--origin", "consent.test/log-2"}, true, true, nil, "exists: consentd restore never replaces a store", false},
		{"no origin", []string{"--from", backup}, false, true, nil, "--from BACKUP and --origin NEW_ORIGIN are required", false},
		{"an origin that is no log's name", []string{"--from", backup, "--origin", "log 2"}, false, true, nil, `--origin "log 2" is not a log's name`, false},
		{"no backup", []string{"--origin", "consent.test/log-2"}, false, true, nil, "--from BACKUP and --origin NEW_ORIGIN are required", false},
		{"a damaged backup", []string{"--from", damaged, "--origin", "consent.test/log-2"}, false, true, nil, "the file is damaged", false},
		{"the new origin cannot be started", []string{"--from", backup, "--origin", "consent.test/log-2"}, false, true, broken, broken.Error(), true},
		{"a consentd that cannot start a new origin yet", []string{"--from", backup, "--origin", "consent.test/log-2"}, false, false, nil, "cannot start a new origin yet: nothing restored", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []call
			reorigin = nil
			if tt.hook {
				reorigin = standIn(&calls, tt.fail)
			}
			t.Cleanup(func() { reorigin = nil })
			dir := t.TempDir()
			db := filepath.Join(dir, "consent.db")
			if tt.exists {
				MustWriteFile(t, db, []byte("a store"))
			}
			before := MustList(t, dir)
			stdout, _, err := runConsentd(append([]string{"restore", "--db", db, "--keys", m.KeysDir}, tt.args...)...)
			if (len(calls) > 0) != tt.reorigin {
				t.Errorf("reorigin called %d times, want called: %t", len(calls), tt.reorigin)
			}
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
					t.Errorf("got %v, want one sentence with %q", err, tt.want)
				}
				if after := MustList(t, dir); !slices.Equal(after, before) {
					t.Errorf("a refused restore changed %s: %q, was %q", dir, after, before)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stdout, db+": restored from "+backup+", with the log "+testOrigin+" up to size 3; new records go to the log consent.test/log-2") {
				t.Errorf("restore said:\n%s", stdout)
			}
			if calls[0].origin != "consent.test/log-2" || !bytes.Equal(calls[0].data, []byte(MustRead(t, backup))) {
				t.Errorf("reorigin was given origin %q and %d bytes, want the new origin and the backup's bytes", calls[0].origin, len(calls[0].data))
			}
			if got := MustList(t, dir); !slices.Equal(got, []string{"consent.db"}) {
				t.Errorf("the directory holds %q, want the store alone", got)
			}
			if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("the restored store: %v, %v; want mode 0600", fi, err)
			}
		})
	}
}
