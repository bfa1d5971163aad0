package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
)

// MustServedDir runs `consentd serve` on a first installation in a new directory,
// records n refusals and stops it; m names its files.
func MustServedDir(tb testing.TB, n int) *Main {
	tb.Helper()
	m, _, served, stop := MustServeWithRefusals(tb, n)
	stop()
	if err := <-served; err != nil {
		tb.Fatal(err)
	}
	return m
}

// serveArgs returns the arguments of `consentd serve` on m's files, on a free port.
func serveArgs(m *Main, extra ...string) []string {
	return append([]string{"serve", "--addr", "127.0.0.1:0", "--config", m.ConfigPath, "--db", m.DBPath, "--keys", m.KeysDir, "--tokens", m.TokensPath}, extra...)
}

// runRefused runs consentd with args as main does, where it must refuse to start:
// it returns the error, or fails tb if consentd served until the deadline instead.
func runRefused(tb testing.TB, args ...string) error {
	tb.Helper()
	// A consentd that starts instead serves until the test's deadline, then fails it.
	ctx, cancel := wait.Context(tb, context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, &stdout, &stderr)
	if err == nil {
		tb.Fatalf("consentd %s started; want it refused", args[0])
	}
	if out := stdout.String() + stderr.String() + err.Error(); strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") || strings.Contains(err.Error(), "\n") {
		tb.Errorf("want one sentence, got: %v\n%s", err, out)
	}
	return err
}

// MustStart runs m until the test ends and returns once it serves.
func MustStart(tb testing.TB, m *Main) (addr string, stop func() error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stop = func() error { cancel(); return <-done }
	select {
	case a := <-m.listening:
		tb.Cleanup(func() { cancel() })
		return a.String(), stop
	case err := <-done:
		tb.Fatalf("serve: %v", err)
	case <-wait.Timeout(tb):
		tb.Fatal("serve did not start")
	}
	return "", nil
}

// NewMainOn returns a Main for `consentd serve` on m's files, with args added.
func NewMainOn(tb testing.TB, m *Main, stderr io.Writer, extra ...string) *Main {
	tb.Helper()
	m2 := NewMain(io.Discard, stderr)
	if err := m2.ParseFlags(serveArgs(m, extra...)[1:]); err != nil {
		tb.Fatal(err)
	}
	m2.ReloadEvery = 20 * time.Millisecond
	return m2
}

// TestStartDamagedStore: serve and verify of a damaged store file exit with one
// sentence that says what is wrong, which file and what to do, never a panic or a
// crash, and leave the file as it was.
func TestStartDamagedStore(t *testing.T) {
	m := MustServedDir(t, 200)
	intact, err := os.ReadFile(m.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	used := MustUsedSize(t, m.DBPath)
	page := os.Getpagesize()
	tests := []struct {
		name    string
		damaged func() []byte
	}{
		{"cut to 100 bytes", func() []byte { return bytes.Clone(intact[:100]) }},
		{"cut to one page", func() []byte { return bytes.Clone(intact[:page]) }},
		{"cut to half", func() []byte { return bytes.Clone(intact[:used/2/page*page]) }},
		{"random bytes", func() []byte { return MustRandom(len(intact)) }},
		{"pages in the middle overwritten", func() []byte {
			data := bytes.Clone(intact)
			from := used / 3 / page * page
			copy(data[from:2*used/3/page*page], MustRandom(len(data)))
			return data
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			damaged := filepath.Join(t.TempDir(), "consent.db")
			data := tt.damaged()
			if err := os.WriteFile(damaged, data, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				serveArgs(m, "--db", damaged),
				{"verify", "--db", damaged, "--keys", m.KeysDir},
			} {
				err := runRefused(t, args...)
				if !errors.Is(err, bolt.ErrDamaged) || !strings.Contains(err.Error(), damaged+": the file is damaged") ||
					!strings.Contains(err.Error(), "restore it from a backup (consentd backup makes them) and keep the damaged file for analysis") {
					t.Errorf("consentd %s: %v; want the file, that it is damaged, and what to do", args[0], err)
				}
			}
			if after, err := os.ReadFile(damaged); err != nil || !bytes.Equal(after, data) {
				t.Errorf("the damaged file changed (%v)", err)
			}
		})
	}
}

// MustUsedSize returns the bytes of the store file at path that hold its pages.
func MustUsedSize(tb testing.TB, path string) int {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var size int
	db.View(func(tx *bbolt.Tx) error { size = int(tx.Size()); return nil })
	return size
}

// MustRandom returns n bytes, the same in every run.
func MustRandom(n int) []byte {
	r := rand.New(rand.NewPCG(8, 13))
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	return out
}

// TestStartWithoutStore: a store that existed is never replaced unnoticed. serve makes
// a new store only on a first installation or with --new-store, refuses a store file
// gone while keys exist, and an empty one; verify says neither is a store.
func TestStartWithoutStore(t *testing.T) {
	m := MustServedDir(t, 2)
	moved := m.DBPath + ".moved"
	if err := os.Rename(m.DBPath, moved); err != nil {
		t.Fatal(err)
	}

	err := runRefused(t, serveArgs(m)...)
	want := m.DBPath + " does not exist, but " + m.KeysDir + " holds signing keys: the store was moved or deleted. Restore it from a backup, or start a new, empty store with --new-store"
	if err.Error() != want {
		t.Errorf("serve without its store: %v; want %q", err, want)
	}
	if _, err := os.Stat(m.DBPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve refused, yet %s exists (%v)", m.DBPath, err)
	}
	if err := runRefused(t, "verify", "--db", m.DBPath, "--keys", m.KeysDir); !strings.Contains(err.Error(), m.DBPath+": not a consentd store") {
		t.Errorf("verify of a missing file: %v; want not a consentd store", err)
	}

	if err := os.WriteFile(m.DBPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runRefused(t, serveArgs(m)...); !strings.Contains(err.Error(), m.DBPath+": the file is empty") {
		t.Errorf("serve with an empty store file: %v; want it refused", err)
	}
	if fi, err := os.Stat(m.DBPath); err != nil || fi.Size() != 0 {
		t.Errorf("the empty store file after serve: %v, %v; want it left empty", fi, err)
	}
	if err := runRefused(t, "verify", "--db", m.DBPath, "--keys", m.KeysDir); !strings.Contains(err.Error(), m.DBPath+": not a consentd store") {
		t.Errorf("verify of an empty file: %v; want not a consentd store", err)
	}
	if err := os.Remove(m.DBPath); err != nil {
		t.Fatal(err)
	}

	_, stop := MustStart(t, NewMainOn(t, m, io.Discard, "--new-store"))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if stdout, _, err := runConsentd("verify", "--db", m.DBPath, "--keys", m.KeysDir); err != nil || !strings.Contains(stdout, "OK, 0 records") {
		t.Errorf("the new store: %v, %q; want an empty store that verifies", err, stdout)
	}
	if err := runRefused(t, serveArgs(m, "--new-store")...); !strings.Contains(err.Error(), "--new-store, but "+m.DBPath+" exists") {
		t.Errorf("--new-store with a store: %v; want it refused", err)
	}
}

// TestStartWithoutKeys: a store whose keys are gone, or replaced by a new one, does
// not start with a new key, under which nothing it holds would verify.
func TestStartWithoutKeys(t *testing.T) {
	m := MustServedDir(t, 2)
	old := publishedKeyIDs(t, m.KeysDir)
	before, err := os.ReadFile(m.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(m.KeysDir); err != nil {
		t.Fatal(err)
	}
	err = runRefused(t, serveArgs(m)...)
	if want := m.DBPath + " holds records or checkpoints signed by " + old[0] + ", which " + m.KeysDir + " does not hold: restore the key directory from a backup"; !strings.Contains(err.Error(), want) {
		t.Errorf("serve without its keys: %v; want %q", err, want)
	}
	if _, err := os.Stat(m.KeysDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve refused, yet made %s (%v)", m.KeysDir, err)
	}

	if _, _, err := runConsentd("keygen", "--keys", m.KeysDir); err != nil {
		t.Fatal(err)
	}
	if err := runRefused(t, serveArgs(m)...); !strings.Contains(err.Error(), "signed by "+old[0]+", which "+m.KeysDir+" does not hold") {
		t.Errorf("serve with a new key only: %v; want it refused", err)
	}
	if after, err := os.ReadFile(m.DBPath); err != nil || !bytes.Equal(after, before) {
		t.Errorf("a refused start changed the store (%v)", err)
	}
	stdout, _, err := runConsentd("verify", "--db", m.DBPath, "--keys", m.KeysDir)
	if !errors.Is(err, errMissingKey) || !strings.Contains(stdout, "cannot verify "+m.DBPath+": the checkpoint at place 2 is signed by key "+old[0]) {
		t.Errorf("verify with a new key only: %v, %q; want the missing key named", err, stdout)
	}
}

// publishedKeyIDs returns the ids of the keys in dir, oldest first.
func publishedKeyIDs(tb testing.TB, dir string) []string {
	tb.Helper()
	keys, err := proof.LoadKeyring(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	for _, k := range keys.Public() {
		ids = append(ids, k.ID)
	}
	return ids
}

// TestStartStoreFileMode: records hold personal data; serve refuses a store file that
// others may read, with the command that fixes it.
func TestStartStoreFileMode(t *testing.T) {
	m := MustServedDir(t, 1)
	if err := os.Chmod(m.DBPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runRefused(t, serveArgs(m)...); !strings.Contains(err.Error(), "run chmod 600 "+m.DBPath) {
		t.Errorf("serve with a store file of mode 0644: %v; want chmod 600", err)
	}
}

// TestStartOnBusyPort: a first start that cannot listen creates nothing: no store,
// no key.
func TestStartOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	err = runRefused(t, "serve", "--addr", ln.Addr().String(), "--config", "../../sites.yaml",
		"--db", filepath.Join(data, "consent.db"), "--keys", filepath.Join(data, "keys"), "--tokens", filepath.Join(data, "tokens.json"))
	if !strings.Contains(err.Error(), "listen") {
		t.Errorf("serve on a busy port: %v; want a listen error", err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("a failed start left %v behind (%v)", entries, err)
	}
}
