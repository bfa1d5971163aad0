package proof_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/translog"
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
	signer, err := kr.LogSigner(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signedBefore, err := signer.SignTree(1, [32]byte{1})
	if err != nil {
		t.Fatal(err)
	}

	newer := MustGenerate(t, dir, t0.Add(24*time.Hour))
	kr = MustLoad(t, dir)
	if kr.Signer().ID != newer.ID {
		t.Errorf("after rotation the signer is %s, want the new key %s", kr.Signer().ID, newer.ID)
	}
	verifier, err := kr.LogVerifier(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Open(signedBefore.Signed); err != nil {
		t.Errorf("a checkpoint of the old key no longer verifies after rotation: %v", err)
	}
	newerOnly, err := proof.NewKeyring(newer).LogVerifier(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newerOnly.Open(signedBefore.Signed); err == nil {
		t.Error("a checkpoint of the old key verifies with the new key alone")
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

	if err := os.Chmod(files[0], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o770, 0o702, 0o777} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := proof.LoadKeyring(dir); err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) {
			t.Errorf("directory mode %v: err = %v, want a refusal that says chmod 700", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o700, 0o755} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := proof.LoadKeyring(dir); err != nil {
			t.Errorf("directory mode %v: %v", mode, err)
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
	k, err := proof.Generate(dir, now, false)
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

// TestKeyringReplace: whoever holds a keyring signs with the newest key once it is
// replaced, also while others sign with it, and still verifies with the old keys.
func TestKeyringReplace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	old := MustGenerate(t, dir, time.Now())
	held := MustLoad(t, dir) // as the server and the store hold it

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !signsAndVerifies(held, 1) {
					t.Error("a checkpoint signed during a replacement does not verify")
					return
				}
			}
		})
	}
	newer := MustGenerate(t, dir, time.Now().Add(time.Second))
	held.Replace(MustLoad(t, dir))
	close(stop)
	wg.Wait()

	if got := held.Signer().ID; got != newer.ID {
		t.Errorf("after Replace the signer is %s, want the new key %s", got, newer.ID)
	}
	signer, err := held.LogSigner(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	newest, err := proof.NewKeyring(newer).LogVerifier(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := signer.SignTree(2, [32]byte{2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newest.Open(cp.Signed); err != nil {
		t.Errorf("after Replace, a checkpoint is not signed by the new key: %v", err)
	}
	for _, kid := range []string{old.ID, newer.ID} {
		if !held.HasKey(kid) {
			t.Errorf("HasKey(%s) = false after Replace", kid)
		}
	}
	if held.HasKey("ed25519-0000000000000000") {
		t.Error("HasKey of an unknown id = true")
	}
}

const testOrigin = "keys.example/log"

// signsAndVerifies reports whether a checkpoint of size signed with kr's log signer
// opens with kr's log verifier.
func signsAndVerifies(kr *proof.Keyring, size int64) bool {
	signer, err := kr.LogSigner(testOrigin)
	if err != nil {
		return false
	}
	v, err := kr.LogVerifier(testOrigin)
	if err != nil {
		return false
	}
	cp, err := signer.SignTree(size, [32]byte{1})
	if err != nil {
		return false
	}
	_, err = v.Open(cp.Signed)
	return err == nil
}

// TestWriteKey: a key file appears whole under its final name, with nothing else
// left in the directory, never replaces one of the same name, and changes the
// directory's modification time, which a running consentd watches.
func TestWriteKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	MustGenerate(t, dir, time.Now())
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	before := fi.ModTime()

	k, err := proof.NewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	path, err := proof.WriteKey(dir, k)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".key") {
			t.Errorf("left in the key directory: %s", e.Name())
		}
	}
	if len(entries) != 2 || filepath.Dir(path) != dir {
		t.Errorf("key files = %v, written at %s; want two in %s", entries, path, dir)
	}
	if kr := MustLoad(t, dir); kr.Signer().ID != k.ID {
		t.Errorf("signer = %s, want the key written last %s", kr.Signer().ID, k.ID)
	}
	if fi, err := os.Stat(dir); err != nil || fi.ModTime().Equal(before) {
		t.Errorf("the directory's modification time stayed %v (%v)", before, err)
	}
	if _, err := proof.WriteKey(dir, k); err == nil {
		t.Error("a second WriteKey of the same key replaced its file")
	}
}

// TestStagedKey: a staged key is loaded, verifies and is published, but does not sign
// until it is activated; a directory of staged keys only is refused, and so is
// activating a key that is not staged or not there.
func TestStagedKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	now := time.Now()
	active := MustGenerate(t, dir, now)
	staged, err := proof.Generate(dir, now.Add(time.Second), true)
	if err != nil {
		t.Fatal(err)
	}
	kr := MustLoad(t, dir)
	if got := kr.Signer().ID; got != active.ID {
		t.Errorf("with a newer staged key, %s signs; want %s, the active one", got, active.ID)
	}
	if !kr.HasKey(staged.ID) || len(kr.Public()) != 2 {
		t.Errorf("the staged key is not published: %+v", kr.Public())
	}
	mustVerifyWith(t, staged, kr)

	if err := proof.Activate(dir, active.ID); err == nil || !strings.Contains(err.Error(), "active already") {
		t.Errorf("activating an active key: %v", err)
	}
	if err := proof.Activate(dir, "ed25519-0000000000000000"); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("activating a key that is not there: %v", err)
	}
	if err := proof.Activate(dir, staged.ID); err != nil {
		t.Fatal(err)
	}
	if got := MustLoad(t, dir).Signer().ID; got != staged.ID {
		t.Errorf("after activation, %s signs; want %s", got, staged.ID)
	}

	only := filepath.Join(t.TempDir(), "keys")
	if _, err := proof.Generate(only, now, true); err != nil {
		t.Fatal(err)
	}
	if _, err := proof.LoadKeyring(only); err == nil || !strings.Contains(err.Error(), "consentd keygen --activate") {
		t.Errorf("a directory of staged keys only: %v, want it refused, saying what to do", err)
	}
}

// mustVerifyWith fails tb unless kr verifies what k signs.
func mustVerifyWith(tb testing.TB, k *proof.Key, kr *proof.Keyring) {
	tb.Helper()
	signer, err := translog.NewSigner("keys.test/log", k.Private)
	if err != nil {
		tb.Fatal(err)
	}
	cp, err := signer.SignTree(1, [32]byte{1})
	if err != nil {
		tb.Fatal(err)
	}
	v, err := kr.LogVerifier("keys.test/log")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := v.Open(cp.Signed); err != nil {
		tb.Errorf("a checkpoint that key %s signed does not verify with the keyring: %v", k.ID, err)
	}
}
