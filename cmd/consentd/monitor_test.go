package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
)

// TestMonitor: consentd monitor keeps the log's first checkpoint, nothing while the
// log is unchanged, and a newer one once a consistency proof shows that it extends
// the one kept; the kept files then verify a backup of the store. An empty log is
// no failure; a URL where no log is, is.
func TestMonitor(t *testing.T) {
	t.Run("an empty log", func(t *testing.T) {
		_, addr, _ := MustServe(t, "../../sites.yaml")
		dir := t.TempDir()
		out := MustRun(t, "monitor", "--dir", dir, "--url", "http://"+addr)
		if !strings.Contains(out, "nothing kept: the log "+testOrigin+" at http://"+addr+" has no checkpoint yet") {
			t.Errorf("monitor of an empty log said:\n%s", out)
		}
		if got := MustList(t, dir); !slices.Equal(got, []string{monitorKeys}) {
			t.Errorf("the directory holds %q, want the keys alone", got)
		}
	})
	t.Run("a URL where no log is", func(t *testing.T) {
		_, addr, _ := MustServe(t, "../../sites.yaml")
		_, _, err := runConsentd("monitor", "--dir", t.TempDir(), "--url", "http://"+addr+"/elsewhere")
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("monitor of a URL without a log: %v, want the 404 as a failure", err)
		}
	})

	m := MustServedDir(t, 5)
	token := MustTokenFile(t, m.TokensPath, "dpo") // for the backup below
	addr, _ := MustStart(t, NewMainOn(t, m, io.Discard))
	url := "http://" + addr
	dir := t.TempDir()
	out := MustRun(t, "monitor", "--dir", dir, "--url", url)
	first := filepath.Join(dir, "checkpoint-000000000005")
	if !strings.Contains(out, first+": the first checkpoint of the log "+testOrigin+" kept, size 5") {
		t.Fatalf("first run said:\n%s", out)
	}
	if out := MustRun(t, "monitor", "--dir", dir, "--url", url); !strings.Contains(out, "unchanged at size 5: nothing new kept") {
		t.Errorf("a run without a new record said:\n%s", out)
	}
	for range 3 {
		MustPost(t, addr)
	}
	out = MustRun(t, "monitor", "--dir", dir, "--url", url)
	second := filepath.Join(dir, "checkpoint-000000000008")
	if !strings.Contains(out, second+": the log "+testOrigin+" grew from size 5 to 8, proved consistent") {
		t.Errorf("a run after 3 records said:\n%s", out)
	}
	if got, want := MustList(t, dir), []string{"checkpoint-000000000005", "checkpoint-000000000008", monitorKeys}; !slices.Equal(got, want) {
		t.Errorf("the directory holds %q, want %q", got, want)
	}
	for _, name := range []string{first, second, filepath.Join(dir, monitorKeys)} {
		if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", name, fi, err)
		}
	}

	// The kept checkpoints verify a backup with the keys kept beside them.
	backup := filepath.Join(t.TempDir(), "copy.db")
	MustRun(t, "backup", "--out", backup, "--url", url, "--token-file", token)
	if out := MustRun(t, "verify", "--db", backup, "--public-keys", filepath.Join(dir, monitorKeys), "--checkpoint", first, "--checkpoint", second); !strings.Contains(out, "the log extends 2 archived checkpoints") {
		t.Errorf("verify against the kept checkpoints:\n%s", out)
	}
}

// TestMonitorRejects: a log that does not extend the newest checkpoint kept (cut
// off, rewritten, or a second view of the same size) fails every run, with its
// checkpoint kept aside once; a log under another name is refused.
func TestMonitorRejects(t *testing.T) {
	m := MustServedDir(t, 3)
	keys := MustKeyring(t, m.KeysDir)
	addr, _ := MustStart(t, NewMainOn(t, m, io.Discard))
	url := "http://" + addr
	published, err := keys.Published(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	head, err := parseCheckpoint(MustGet(t, addr, "/v1/log/checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := keys.LogSigner(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	// kept returns a checkpoint of the log's keys, as a monitor would have kept one
	// from a log that showed it this tree.
	kept := func(size int64, root tlog.Hash) *consent.Checkpoint {
		cp, err := signer.SignTree(size, root)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	tests := []struct {
		name string
		kept *consent.Checkpoint
		keys any // keys.json in the directory
		want string
	}{
		{"a log cut off", kept(head.Size+2, tlog.Hash{1}), published, "at size 3, does not extend the checkpoint of size 5 kept in "},
		{"two roots for one size", kept(head.Size, tlog.Hash{2}), published, "two roots for the tree of size 3 (a split view)"},
		{"a log rewritten", kept(head.Size-1, tlog.Hash{3}), published, "the tree of size 3 does not extend the one of size 2"},
		{"another log", nil, &proof.PublicKeys{Origin: "other.test/log", Keys: published.Keys}, `consentd now publishes the keys of the log "` + testOrigin + `", but `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			MustWriteJSON(t, filepath.Join(dir, monitorKeys), tt.keys)
			before := MustList(t, dir)
			if tt.kept != nil {
				MustWriteFile(t, filepath.Join(dir, "checkpoint-000000000001"), kept(1, tlog.Hash{9}).Signed)
				MustWriteFile(t, filepath.Join(dir, fmt.Sprintf("checkpoint-%012d", tt.kept.Size)), tt.kept.Signed)
				before = MustList(t, dir)
			}
			// Every run fails, not only the first: the alarm stays until someone looks.
			for range 2 {
				_, _, err := runConsentd("monitor", "--dir", dir, "--url", url)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want %q", err, tt.want)
				}
				if tt.kept != nil && (!errors.Is(err, errSplitView) || !strings.Contains(err.Error(), "kept as "+filepath.Join(dir, "rejected-checkpoint-000000000003-"))) {
					t.Errorf("got %v, want the checkpoint kept aside", err)
				}
			}
			after := MustList(t, dir)
			var added []string
			for _, name := range after {
				if !slices.Contains(before, name) {
					added = append(added, name)
				}
			}
			switch {
			case tt.kept == nil && len(added) != 0:
				t.Errorf("a refused log left %q in the directory", added)
			case tt.kept != nil && (len(added) != 1 || !strings.HasPrefix(added[0], "rejected-checkpoint-000000000003-")):
				t.Errorf("after two runs the directory gained %q, want one rejected checkpoint", added)
			case tt.kept != nil && MustRead(t, filepath.Join(dir, added[0])) != string(head.Signed):
				t.Errorf("the rejected checkpoint is not the log's:\n%s", MustRead(t, filepath.Join(dir, added[0])))
			}
		})
	}
}

// TestMonitorKeys: the first run keeps the published keys; a later one adds new
// keys and never drops one, and refuses another log's.
func TestMonitorKeys(t *testing.T) {
	a, b := MustEphemeral(t), MustEphemeral(t)
	doc := func(origin string, rings ...*proof.Keyring) *proof.PublicKeys {
		out := &proof.PublicKeys{Origin: origin}
		for _, kr := range rings {
			d, err := kr.Published(origin)
			if err != nil {
				t.Fatal(err)
			}
			out.Keys = append(out.Keys, d.Keys...)
		}
		return out
	}
	tests := []struct {
		name      string
		kept      *proof.PublicKeys // nil: none yet
		published *proof.PublicKeys
		added     int
		keptAfter int    // keys in keys.json afterwards
		err       string // "" for none
	}{
		{"first run", nil, doc(testOrigin, a), 1, 1, ""},
		{"the same keys", doc(testOrigin, a), doc(testOrigin, a), 0, 1, ""},
		{"a key added", doc(testOrigin, a), doc(testOrigin, a, b), 1, 2, ""},
		{"a key no longer published", doc(testOrigin, a, b), doc(testOrigin, b), 0, 2, ""},
		{"another log", doc(testOrigin, a), doc("other.test/log", a), 0, 1, `consentd now publishes the keys of the log "other.test/log"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &monitorDir{path: t.TempDir()}
			path := filepath.Join(d.path, monitorKeys)
			if tt.kept != nil {
				MustWriteJSON(t, path, tt.kept)
			}
			v, added, err := d.keys(tt.published)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("got %v, want %q", err, tt.err)
				}
			} else if err != nil || len(added) != tt.added || v.Origin() != testOrigin {
				t.Errorf("got %v added, %v; want %d added", added, err, tt.added)
			}
			after, err := readPublicKeysFile(path)
			if err != nil || len(after.Keys) != tt.keptAfter || after.Origin != testOrigin {
				t.Errorf("keys.json afterwards: %+v, %v; want %d keys of %s", after, err, tt.keptAfter, testOrigin)
			}
		})
	}
}

// MustEphemeral returns a keyring of one key that is never written.
func MustEphemeral(tb testing.TB) *proof.Keyring {
	tb.Helper()
	kr, err := proof.NewEphemeralKeyring()
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}

// MustGet returns what GET path answers at addr.
func MustGet(tb testing.TB, addr, path string) []byte {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "answer")
	MustFetch(tb, addr, path, out)
	return []byte(MustRead(tb, out))
}
