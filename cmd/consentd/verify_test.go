package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
)

// verdict is what a verify test wants: an OK report, a broken log, a missing key,
// or an error, each with a text the output (or the error) holds.
type verdict struct {
	kind string // "ok", "broken", "missing" or "error"
	want string
}

// mustVerdict runs consentd verify with args and checks the outcome against want.
func mustVerdict(tb testing.TB, want verdict, args ...string) {
	tb.Helper()
	stdout, _, err := runConsentd(append([]string{"verify"}, args...)...)
	var ok bool
	switch want.kind {
	case "ok":
		ok = err == nil && strings.Contains(stdout, ": OK, ") && strings.Contains(stdout, want.want)
	case "broken":
		ok = errors.Is(err, errBroken) && strings.Contains(stdout, ": BROKEN") && strings.Contains(stdout, want.want)
	case "missing":
		ok = errors.Is(err, errMissingKey) && strings.HasPrefix(stdout, "cannot verify ") && !strings.Contains(stdout, "BROKEN") && strings.Contains(stdout, want.want)
	default:
		ok = err != nil && !errors.Is(err, errBroken) && !errors.Is(err, errMissingKey) && strings.Contains(err.Error(), want.want) && stdout == ""
	}
	if !ok {
		tb.Errorf("consentd verify %s: %v\n%s\nwant %s: %q", strings.Join(args, " "), err, stdout, want.kind, want.want)
	}
}

// TestVerifyWithPublicKeys verifies a store with nothing but the keys consentd
// published at GET /v1/keys, as an auditor without the private keys would, and
// tells keys of another log, or that did not sign, from a broken log.
func TestVerifyWithPublicKeys(t *testing.T) {
	m, addr, stop := MustServeWithRefusals(t, 3)
	dir := t.TempDir()
	published := filepath.Join(dir, "keys.json")
	MustFetch(t, addr, "/v1/keys", published)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	other, err := proof.NewEphemeralKeyring()
	if err != nil {
		t.Fatal(err)
	}
	publishedBy := func(name, origin string) string {
		doc, err := other.Published(origin)
		if err != nil {
			t.Fatal(err)
		}
		return MustWriteJSON(t, filepath.Join(dir, name), doc)
	}
	unknown := publishedBy("other-keys.json", testOrigin)
	otherLog := publishedBy("other-log.json", "other.test/log")
	otherDir := filepath.Join(dir, "other-keys")
	if _, err := proof.WriteKey(otherDir, other.Signer()); err != nil {
		t.Fatal(err)
	}
	notKeys := filepath.Join(dir, "not-keys.json")
	if err := os.WriteFile(notKeys, []byte(`{"status":"ok"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	signer := noteKeyName(t, m.KeysDir, publishedKeyIDs(t, m.KeysDir)[0])

	tests := []struct {
		name string
		args []string
		want verdict
	}{
		{"the published keys", []string{"--public-keys", published}, verdict{"ok", "OK, log " + testOrigin + ": 3 leaves rebuilt into the tree its signed checkpoint vouches for; 3 records verify against their leaves"}},
		{"the key directory", []string{"--keys", m.KeysDir}, verdict{"ok", "3 records verify"}},
		{"keys of the log that did not sign", []string{"--public-keys", unknown}, verdict{"missing", "cannot verify " + m.DBPath + ": the log's checkpoint is signed by key " + signer + ", which is not among the keys given; fetch the current keys (GET /v1/keys) or use the key directory"}},
		{"a key directory without the key that signed", []string{"--keys", otherDir}, verdict{"missing", "which is not among the keys given; restore " + otherDir + " from a backup"}},
		{"keys of another log", []string{"--public-keys", otherLog}, verdict{"error", otherLog + ` holds the keys of the log "other.test/log", but ` + m.DBPath + ` holds the log "` + testOrigin + `"`}},
		{"a key directory without keys", []string{"--keys", filepath.Join(dir, "no-keys")}, verdict{"error", filepath.Join(dir, "no-keys") + " holds no keys: give the directory of the keys that signed (--keys), or the keys consentd publishes (--public-keys)"}},
		{"a file without keys", []string{"--public-keys", notKeys}, verdict{"error", notKeys + ": proof: public keys: want"}},
		{"private and public keys at once", []string{"--public-keys", published, "--keys", m.KeysDir}, verdict{"error", "--keys and --public-keys exclude each other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustVerdict(t, tt.want, append([]string{"--db", m.DBPath}, tt.args...)...)
		})
	}
}

// TestVerifyArchivedCheckpoints: a copy of the store from before its last record
// verifies on its own, but not against a checkpoint kept since; nor does the store
// against a checkpoint signed for another tree, with its keys, as one who holds them
// could forge. Checkpoints of another log, or signed by keys not given, are named.
func TestVerifyArchivedCheckpoints(t *testing.T) {
	m := MustServedDir(t, 2)
	dir := t.TempDir()
	older := filepath.Join(dir, "older.db")
	data, err := os.ReadFile(m.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(older, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(m.DBPath, bolt.Log("", MustKeyring(t, m.KeysDir)))
	if err != nil {
		t.Fatal(err)
	}
	cp2, err := s.LastCheckpoint(context.Background())
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	kept2 := MustWriteFile(t, filepath.Join(dir, "checkpoint-2"), cp2.Signed)
	addr, stop := MustStart(t, NewMainOn(t, m, io.Discard))
	MustPost(t, addr)
	kept3 := filepath.Join(dir, "checkpoint-3")
	MustFetch(t, addr, "/v1/log/checkpoint", kept3) // as consentd monitor keeps it
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	sign := func(keys *proof.Keyring, origin string, size int64, root tlog.Hash) string {
		signer, err := keys.LogSigner(origin)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := signer.SignTree(size, root)
		if err != nil {
			t.Fatal(err)
		}
		return MustWriteFile(t, filepath.Join(dir, "signed-"+strings.ReplaceAll(origin, "/", "-")+string(rune('a'+size))), cp.Signed)
	}
	keys := MustKeyring(t, m.KeysDir)
	ephemeral, err := proof.NewEphemeralKeyring()
	if err != nil {
		t.Fatal(err)
	}
	forged := sign(keys, testOrigin, 2, tlog.Hash{1})
	otherLog := sign(keys, "other.test/log", 3, cp2.Root)
	unknownKey := sign(ephemeral, testOrigin, 1, cp2.Root)
	notCheckpoint := MustWriteFile(t, filepath.Join(dir, "not-a-checkpoint"), []byte(`{"size": 3}`))

	tests := []struct {
		name        string
		db          string
		checkpoints []string
		want        verdict
	}{
		{"the store, against the checkpoint kept", m.DBPath, []string{kept3}, verdict{"ok", "; the log extends 1 archived checkpoint\n"}},
		{"the store, against both kept", m.DBPath, []string{kept2, kept3}, verdict{"ok", "; the log extends 2 archived checkpoints\n"}},
		{"the older copy alone", older, nil, verdict{"ok", "2 records verify"}},
		{"the older copy, against the newer checkpoint kept", older, []string{kept3}, verdict{"broken", "the log does not extend the archived"}},
		{"the store, against a forged checkpoint", m.DBPath, []string{kept2, forged}, verdict{"broken", "the log does not extend the archived"}},
		{"a checkpoint of another log", m.DBPath, []string{kept3, otherLog}, verdict{"error", otherLog + ` is a checkpoint of the log "other.test/log", which the log "` + testOrigin + `" of the store neither is nor continues`}},
		{"a checkpoint signed by a key not given", m.DBPath, []string{unknownKey}, verdict{"missing", "the archived checkpoint of size 1 is signed by key " + testOrigin + "+"}},
		{"not a checkpoint", m.DBPath, []string{notCheckpoint}, verdict{"error", notCheckpoint + ": not a signed note: want a checkpoint as GET /v1/log/checkpoint serves it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--db", tt.db, "--keys", m.KeysDir}
			for _, cp := range tt.checkpoints {
				args = append(args, "--checkpoint", cp)
			}
			mustVerdict(t, tt.want, args...)
		})
	}
}

// MustWriteFile writes data to path and returns path.
func MustWriteFile(tb testing.TB, path string, data []byte) string {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
