package proof_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mixvoip/consentd/proof"
)

func TestKeyRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	old := MustGenerate(t, dir, t0)
	kr := MustLoad(t, dir)
	if kr.Signer().ID != old.ID {
		t.Fatalf("signer = %s, want the only key %s", kr.Signer().ID, old.ID)
	}
	msg := []byte("record 1")
	sig := ed25519.Sign(kr.Signer().Private, msg)

	newer := MustGenerate(t, dir, t0.Add(24*time.Hour))
	kr = MustLoad(t, dir)
	if kr.Signer().ID != newer.ID {
		t.Errorf("after rotation the signer is %s, want the new key %s", kr.Signer().ID, newer.ID)
	}
	if !kr.Verify(old.ID, msg, sig) {
		t.Error("a signature of the old key no longer verifies after rotation")
	}
	if kr.Verify(newer.ID, msg, sig) || kr.Verify(old.ID, []byte("record 2"), sig) {
		t.Error("a signature verifies with the wrong key or message")
	}
	pub := kr.Public()
	if len(pub) != 2 || pub[0].ID != old.ID || pub[1].ID != newer.ID || pub[0].Algorithm != "Ed25519" {
		t.Fatalf("published keys = %+v", pub)
	}
	// Anyone can verify with only the published key, and the id follows from it.
	raw, err := base64.RawURLEncoding.DecodeString(pub[0].Key)
	if err != nil || !ed25519.Verify(ed25519.PublicKey(raw), msg, sig) || proof.KeyID(raw) != old.ID {
		t.Error("the published key does not verify the signature or does not match its id")
	}
}

func TestKeyFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	MustGenerate(t, dir, time.Now())
	files, _ := filepath.Glob(filepath.Join(dir, "*.key"))
	if len(files) != 1 {
		t.Fatalf("key files = %v", files)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, files[0]: 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(files[0], mode); err != nil {
			t.Fatal(err)
		}
		if _, err := proof.LoadKeyring(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %v: err = %v, want a refusal that says chmod 600", mode, err)
		}
	}

	if _, err := proof.LoadKeyring(t.TempDir()); !errors.Is(err, proof.ErrNoKeys) {
		t.Errorf("empty directory: err = %v, want ErrNoKeys", err)
	}
	bad := filepath.Join(t.TempDir(), "x.key")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := proof.LoadKeyring(filepath.Dir(bad)); err == nil {
		t.Error("a file that is not a key loaded")
	}
}

func MustGenerate(tb testing.TB, dir string, now time.Time) *proof.Key {
	tb.Helper()
	k, err := proof.Generate(dir, now)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func MustLoad(tb testing.TB, dir string) *proof.Keyring {
	tb.Helper()
	kr, err := proof.LoadKeyring(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}
