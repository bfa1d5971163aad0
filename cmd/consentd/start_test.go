package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
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
	m, _, stop := MustServeWithRefusals(tb, n)
	if err := stop(); err != nil {
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

// MustStart runs m until the test ends and returns once it serves; stop stops it
// sooner.
func MustStart(tb testing.TB, m *Main) (addr string, stop func() error) {
	tb.Helper()
	if err := m.Run(context.Background()); err != nil {
		tb.Fatalf("serve: %v", err)
	}
	tb.Cleanup(func() { m.Close() })
	return m.addrs[0].String(), m.Close
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

	if err := runRefused(t, serveArgs(m, "--new-store")...); err.Error() != "--origin is required to create the store "+m.DBPath+": it names the store's log for good, such as consent.example.com/log ($CONSENTD_ORIGIN)" {
		t.Errorf("--new-store without --origin: %v; want it refused, naming --origin", err)
	}
	_, stop := MustStart(t, NewMainOn(t, m, io.Discard, "--new-store", "--origin", "consent.test/log-2"))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if stdout, _, err := runConsentd("verify", "--db", m.DBPath, "--keys", m.KeysDir); err != nil || !strings.Contains(stdout, "OK, log consent.test/log-2: 0 leaves; 0 records verify") {
		t.Errorf("the new store: %v, %q; want an empty store of the new log that verifies", err, stdout)
	}
	if err := runRefused(t, serveArgs(m, "--new-store")...); !strings.Contains(err.Error(), "--new-store, but "+m.DBPath+" exists") {
		t.Errorf("--new-store with a store: %v; want it refused", err)
	}
}

// TestStartWithoutKeys: a store whose keys are gone, or replaced by a new one, does
// not start with a new key, under which nothing it holds would verify.
func TestStartWithoutKeys(t *testing.T) {
	m := MustServedDir(t, 2)
	old := noteKeyName(t, m.KeysDir, publishedKeyIDs(t, m.KeysDir)[0])
	before, err := os.ReadFile(m.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(m.KeysDir); err != nil {
		t.Fatal(err)
	}
	err = runRefused(t, serveArgs(m)...)
	if want := m.KeysDir + " holds no signing keys, but " + m.DBPath + " exists: restore the key directory from a backup"; !strings.Contains(err.Error(), want) {
		t.Errorf("serve without its keys: %v; want %q", err, want)
	}
	if _, err := os.Stat(m.KeysDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve refused, yet made %s (%v)", m.KeysDir, err)
	}

	if _, _, err := runConsentd("keygen", "--keys", m.KeysDir); err != nil {
		t.Fatal(err)
	}
	err = runRefused(t, serveArgs(m)...)
	if !strings.Contains(err.Error(), m.DBPath+": the log's latest checkpoint was signed by a key the signing keys lack") {
		t.Errorf("serve with a new key only: %v; want it refused", err)
	}
	if after, err := os.ReadFile(m.DBPath); err != nil || !bytes.Equal(after, before) {
		t.Errorf("a refused start changed the store (%v)", err)
	}
	stdout, _, err := runConsentd("verify", "--db", m.DBPath, "--keys", m.KeysDir)
	if !errors.Is(err, errMissingKey) || !strings.Contains(stdout, "cannot verify "+m.DBPath+": the log's checkpoint is signed by key "+old+", which is not among the keys given") {
		t.Errorf("verify with a new key only: %v, %q; want the missing key named", err, stdout)
	}
}

// TestStartOrigin: a store is created only with the name of its log, --origin or
// $CONSENTD_ORIGIN, which it keeps for good: a later start may omit it, never
// change it. A name that cannot be a log's is refused before anything is made.
func TestStartOrigin(t *testing.T) {
	m := MustServedDir(t, 1)
	fresh := func() []string {
		dir := t.TempDir()
		return []string{"serve", "--addr", "127.0.0.1:0", "--config", "../../sites.yaml", "--db", filepath.Join(dir, "consent.db"), "--keys", filepath.Join(dir, "keys"), "--tokens", filepath.Join(dir, "tokens.json")}
	}
	tests := []struct {
		name   string
		args   []string
		env    string // $CONSENTD_ORIGIN
		refuse string // the refusal, "" if it starts
		origin string // the log /v1/keys names once started
	}{
		{"a new store without an origin", fresh(), "", "--origin is required to create the store", ""},
		{"a new store with an origin that is no log's name", append(fresh(), "--origin", "consent example"), "", `--origin "consent example" is not a log's name`, ""},
		{"a new store with an origin", append(fresh(), "--origin", "new.test/log"), "", "", "new.test/log"},
		{"a new store with $CONSENTD_ORIGIN", fresh(), "env.test/log", "", "env.test/log"},
		{"the store without an origin", serveArgs(m), "", "", testOrigin},
		{"the store with its origin", serveArgs(m, "--origin", testOrigin), "", "", testOrigin},
		{"the store with another origin", serveArgs(m, "--origin", "other.test/log"), "", `the store's log is "` + testOrigin + `", but the configuration names "other.test/log"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CONSENTD_ORIGIN", tt.env)
			if tt.refuse != "" {
				files := map[string]bool{} // --db and --keys: whether they exist
				for i, arg := range tt.args[:len(tt.args)-1] {
					if arg == "--db" || arg == "--keys" {
						_, err := os.Stat(tt.args[i+1])
						files[tt.args[i+1]] = err == nil
					}
				}
				if err := runRefused(t, tt.args...); !strings.Contains(err.Error(), tt.refuse) {
					t.Errorf("got %v, want %q", err, tt.refuse)
				}
				for path, existed := range files {
					if _, err := os.Stat(path); (err == nil) != existed {
						t.Errorf("a refused start made or removed %s", path)
					}
				}
				return
			}
			m2 := NewMain(io.Discard, io.Discard)
			if err := m2.ParseFlags(tt.args[1:]); err != nil {
				t.Fatal(err)
			}
			addr, stop := MustStart(t, m2)
			doc := MustPublicKeys(t, addr)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if doc.Origin != tt.origin {
				t.Errorf("GET /v1/keys names the log %q, want %q", doc.Origin, tt.origin)
			}
		})
	}
}

// MustPublicKeys returns what GET /v1/keys answers at addr.
func MustPublicKeys(tb testing.TB, addr string) *proof.PublicKeys {
	tb.Helper()
	resp, err := http.Get("http://" + addr + "/v1/keys")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := proof.ReadPublicKeys(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return doc
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
		"--db", filepath.Join(data, "consent.db"), "--keys", filepath.Join(data, "keys"), "--tokens", filepath.Join(data, "tokens.json"), "--origin", testOrigin)
	if !strings.Contains(err.Error(), "listen") {
		t.Errorf("serve on a busy port: %v; want a listen error", err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("a failed start left %v behind (%v)", entries, err)
	}
}

// MustKeyring returns the keys in dir.
func MustKeyring(tb testing.TB, dir string) *proof.Keyring {
	tb.Helper()
	keys, err := proof.LoadKeyring(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// MustOpenStore opens the store of m, which no consentd serves, with its keys; it is
// closed when the test ends.
func MustOpenStore(tb testing.TB, m *Main) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(m.DBPath, bolt.Log("", MustKeyring(tb, m.KeysDir)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// signedBy returns the id of the key in keysDir that signed the note signed for the
// log origin, "" if none did.
func signedBy(tb testing.TB, keysDir, origin string, signed []byte) string {
	tb.Helper()
	doc, err := MustKeyring(tb, keysDir).Published(origin)
	if err != nil {
		tb.Fatal(err)
	}
	for _, k := range doc.Keys {
		one := &proof.PublicKeys{Origin: origin, Keys: []proof.PublicKey{k}}
		v, err := one.Verifier()
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := v.Open(signed); err == nil {
			return k.ID
		}
	}
	return ""
}

// noteKeyName returns the name under which the key kid in keysDir signs the notes of
// the log testOrigin, as verification names a key it lacks: origin+hash.
func noteKeyName(tb testing.TB, keysDir, kid string) string {
	tb.Helper()
	doc, err := MustKeyring(tb, keysDir).Published(testOrigin)
	if err != nil {
		tb.Fatal(err)
	}
	for _, k := range doc.Keys {
		if k.ID == kid {
			parts := strings.SplitN(k.LogKey, "+", 3)
			return parts[0] + "+" + parts[1]
		}
	}
	tb.Fatalf("no key %s in %s", kid, keysDir)
	return ""
}
