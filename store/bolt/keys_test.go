package bolt

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/storetest"
)

// MustKey returns a new key created at now.
func MustKey(tb testing.TB, now time.Time) *proof.Key {
	tb.Helper()
	k, err := proof.NewKey(now)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// MustKeyIDs returns the key ids s holds.
func MustKeyIDs(tb testing.TB, s *Store) []string {
	tb.Helper()
	ids, err := s.KeyIDs(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

// TestKeyIDs: the store keeps the id of every key that signed a receipt or a
// checkpoint in it, also across a rotation, and fills them in once for a store
// written before it kept them.
func TestKeyIDs(t *testing.T) {
	first, second := MustKey(t, time.Now()), MustKey(t, time.Now().Add(time.Second))
	keys := proof.NewKeyring(storetest.ReceiptKey(), first)
	path := filepath.Join(t.TempDir(), "consent.db")
	s := MustOpen(t, path, Checkpoints(keys, time.Hour))
	storetest.MustAppend(t, s, storetest.NewRecord(t, uuid.NewString(), storetest.Now()))
	if got, want := MustKeyIDs(t, s), []string{storetest.ReceiptKey().ID}; !slices.Equal(got, want) {
		t.Errorf("KeyIDs after a record = %v, want %v", got, want)
	}
	if err := s.Close(); err != nil { // signs a checkpoint with first
		t.Fatal(err)
	}
	keys.Replace(proof.NewKeyring(storetest.ReceiptKey(), first, second))
	s = MustOpen(t, path, Checkpoints(keys, time.Hour))
	storetest.MustAppend(t, s, storetest.NewRecord(t, uuid.NewString(), storetest.Now()))
	if err := s.Close(); err != nil { // signs a checkpoint with second
		t.Fatal(err)
	}
	want := sorted(first.ID, second.ID, storetest.ReceiptKey().ID)
	s = MustOpen(t, path)
	if got := MustKeyIDs(t, s); !slices.Equal(got, want) {
		t.Errorf("KeyIDs = %v, want %v", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// As an older consentd left it.
	MustTamper(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketKeys) })
	s = MustOpen(t, path, Checkpoints(keys, time.Hour))
	if got := MustKeyIDs(t, s); !slices.Equal(got, want) {
		t.Errorf("KeyIDs of a store without them = %v, want %v", got, want)
	}
}

// TestOpenMissingKeys: a store does not open with a signer that lacks a key that
// signed in it, a key directory lost or replaced, say; the file is left as it was.
func TestOpenMissingKeys(t *testing.T) {
	old := MustKey(t, time.Now())
	path := filepath.Join(t.TempDir(), "consent.db")
	s := MustOpen(t, path, Checkpoints(proof.NewKeyring(storetest.ReceiptKey(), old), time.Hour))
	storetest.MustAppend(t, s, storetest.NewRecord(t, uuid.NewString(), storetest.Now()))
	if err := s.Close(); err != nil { // signs a checkpoint with old
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		keys    *proof.Keyring
		missing []string
	}{
		{"a new key only", proof.NewKeyring(MustKey(t, time.Now())), sorted(old.ID, storetest.ReceiptKey().ID)},
		{"the one that signed receipts only", proof.NewKeyring(storetest.ReceiptKey()), []string{old.ID}},
		{"the one that signed checkpoints and a newer one", proof.NewKeyring(old, MustKey(t, time.Now())), []string{storetest.ReceiptKey().ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(path, Checkpoints(tt.keys, time.Hour))
			if err == nil {
				s.Close()
				t.Fatal("Open: no error")
			}
			var missing *MissingKeysError
			if !errors.As(err, &missing) || !slices.Equal(missing.KeyIDs, tt.missing) || missing.Path != path || !strings.Contains(err.Error(), strings.Join(tt.missing, ", ")) {
				t.Errorf("Open = %v; want a *MissingKeysError naming %v", err, tt.missing)
			}
		})
	}
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, before) {
		t.Errorf("a refused Open changed the file (%v)", err)
	}
	// Without a signer nothing is signed, so nothing is missing: tools read the store.
	MustOpen(t, path)
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
