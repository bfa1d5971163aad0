// Package proof holds the ed25519 keys that sign a store's transparency log: they
// rotate, the newest signs, all of them verify, and their public halves are
// published so that anyone can verify a receipt, a checkpoint or a store.
package proof

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mixvoip/consentd/internal/durable"
	"github.com/mixvoip/consentd/translog"
)

// Algorithm names the signature scheme in published keys and receipts.
const Algorithm = "Ed25519"

// Key is one ed25519 signing key.
type Key struct {
	ID      string // derived from the public key, see KeyID
	Private ed25519.PrivateKey
	Created time.Time
	// Staged is a key that verifies and is published but does not sign yet, until
	// Activate: several instances sharing the key files all learn it before any of
	// them signs with it.
	Staged bool
}

// PublicKey is a key as GET /v1/keys publishes it: enough for anyone to verify a
// receipt without trusting consentd.
type PublicKey struct {
	ID        string    `json:"kid"`
	Algorithm string    `json:"alg"`
	Key       string    `json:"public_key"` // the 32-byte key, base64url without padding
	Created   time.Time `json:"created"`
	// LogKey is the key as a note verifier key of the log (origin+hash+key), what
	// C2SP tools such as witnesses take.
	LogKey string `json:"note_verifier_key,omitempty"`
}

// KeyID returns the id of a public key: "ed25519-" and the first 16 hex digits of
// its SHA-256, so that the id cannot name another key than the one it came from.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519-" + hex.EncodeToString(sum[:8])
}

// Public returns k as published.
func (k *Key) Public() PublicKey { return k.verifying().published() }

// verifying returns the public half of k.
func (k *Key) verifying() publicKey {
	return publicKey{id: k.ID, key: k.Private.Public().(ed25519.PublicKey), created: k.Created}
}

// publicKey is a key that verifies: the public half of a key held, or a key learned
// (see Keyring.Learn).
type publicKey struct {
	id      string
	key     ed25519.PublicKey
	created time.Time
}

func (p publicKey) published() PublicKey {
	return PublicKey{ID: p.id, Algorithm: Algorithm, Key: base64.RawURLEncoding.EncodeToString(p.key), Created: p.created}
}

// Keyring holds every key in a directory: the newest signs, all of them verify, so
// that rotating to a new key leaves old receipts verifiable. Its keys can be replaced
// while others sign with it (see Replace). It may also verify with public keys it
// learned, that other instances of consentd hold (see Learn).
type Keyring struct {
	// keys is replaced whole, never changed in place: a signer that took the newest
	// key signs with it even if a reload comes in between.
	keys atomic.Pointer[[]*Key] // oldest first
	// learned only grows, under learning: a key that verified once keeps verifying
	// what it signed.
	learned  atomic.Pointer[[]publicKey]
	learning sync.Mutex
	// signer is the last LogSigner made: a store asks for one per batch, and making
	// one derives the key's note verifier key.
	signer atomic.Pointer[logSigner]
}

// logSigner is the signer of the log origin with key.
type logSigner struct {
	origin string
	key    *Key
	signer *translog.Signer
}

// ErrNoKeys is returned by LoadKeyring for a directory without keys.
var ErrNoKeys = errors.New("no signing key")

const (
	keySuffix    = ".key"
	stagedSuffix = ".staged" + keySuffix
)

// LoadKeyring reads the *.key files in dir. It refuses any key file that others than
// its owner may read: a leaked private key lets anyone forge proofs. It refuses a
// directory that others may write to: a key they put there would sign, the newest.
func LoadKeyring(dir string) (*Keyring, error) {
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("proof: others than its owner may write to %s (mode %v), and a key put there would sign: run chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"+keySuffix))
	if err != nil {
		return nil, fmt.Errorf("proof: keys in %s: %w", dir, err)
	}
	var keys []*Key
	for _, name := range names {
		k, err := readKey(name)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("proof: %s: %w (create one with: consentd keygen --keys %s)", dir, ErrNoKeys, dir)
	}
	if !slices.ContainsFunc(keys, func(k *Key) bool { return !k.Staged }) {
		return nil, fmt.Errorf("proof: every key in %s is staged, and none signs: activate one with consentd keygen --activate KID --keys %s", dir, dir)
	}
	return NewKeyring(keys...), nil
}

func readKey(name string) (*Key, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("proof: %s is readable by others (mode %v): run chmod 600 %s", name, fi.Mode().Perm(), name)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("proof: %s: not a PEM private key", name)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	priv, ok := parsed.(ed25519.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("proof: %s: not an ed25519 private key", name)
	}
	created, err := time.Parse(time.RFC3339Nano, block.Headers["Created"])
	if err != nil {
		return nil, fmt.Errorf("proof: %s: no valid Created header", name)
	}
	return &Key{ID: KeyID(priv.Public().(ed25519.PublicKey)), Private: priv, Created: created, Staged: strings.HasSuffix(name, stagedSuffix)}, nil
}

// NewKey returns a new key, created at now, that lives only in memory until Generate
// writes one: tools and tests use it as it is.
func NewKey(now time.Time) (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("proof: generate key: %w", err)
	}
	return &Key{ID: KeyID(priv.Public().(ed25519.PublicKey)), Private: priv, Created: now.UTC()}, nil
}

// NewKeyring returns a keyring of keys, at least one not staged; the one of those
// created last signs.
func NewKeyring(keys ...*Key) *Keyring {
	sorted := slices.Clone(keys)
	slices.SortStableFunc(sorted, func(a, b *Key) int { return a.Created.Compare(b.Created) })
	kr := &Keyring{}
	kr.keys.Store(&sorted)
	return kr
}

// Replace gives kr the keys of next. Whoever holds kr (the server signing receipts,
// the store signing checkpoints) signs with next's newest key from then on, so that
// a key added while consentd runs needs no restart.
func (kr *Keyring) Replace(next *Keyring) { kr.keys.Store(next.keys.Load()) }

// Generate creates a new key in dir (created with mode 0700 if missing) as a PKCS#8
// PEM file with mode 0600; from then on it is the newest key and signs, unless
// staged (see Key.Staged).
func Generate(dir string, now time.Time, staged bool) (*Key, error) {
	k, err := NewKey(now)
	if err != nil {
		return nil, err
	}
	k.Staged = staged
	if _, err := WriteKey(dir, k); err != nil {
		return nil, err
	}
	return k, nil
}

// WriteKey writes k into dir (created with mode 0700 if missing) as a PKCS#8 PEM file
// with mode 0600, and returns the file's path. A key file of the same name is never
// replaced.
//
// The file appears whole or not at all: a consentd that watches dir reloads it when
// the directory changes, and must not find half a key.
func WriteKey(dir string, k *Key) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return "", fmt.Errorf("proof: encode key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("proof: %w", err)
	}
	// Created to the nanosecond: two keys made in the same second still have an order,
	// and the newest signs.
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Created": k.Created.Format(time.RFC3339Nano)}, Bytes: der})
	name := keyFile(dir, k)
	f, err := os.CreateTemp(dir, ".new-key-*") // mode 0600; not a *.key file, so never loaded
	if err != nil {
		return "", fmt.Errorf("proof: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if errClose := f.Close(); err == nil {
		err = errClose
	}
	if err == nil {
		// A link, unlike a rename, fails if the name is taken.
		err = os.Link(f.Name(), name)
	}
	os.Remove(f.Name())
	if err == nil {
		err = durable.SyncDir(dir) // a key lost in a crash leaves every receipt it signed unverifiable
	}
	if err != nil {
		return "", fmt.Errorf("proof: write %s: %w", name, err)
	}
	touch(dir)
	return name, nil
}

// touch sets dir's modification time to now. A watcher that polls it may have looked
// within one tick of the file system's clock before a change (a key file linked or
// renamed there), and would then see no change: a time of our own, to the
// nanosecond and set last, is one it has not seen.
func touch(dir string) {
	now := time.Now()
	_ = os.Chtimes(dir, now, now)
}

// keyFile returns the name of k's file in dir.
func keyFile(dir string, k *Key) string {
	suffix := keySuffix
	if k.Staged {
		suffix = stagedSuffix
	}
	return filepath.Join(dir, k.Created.Format("20060102T150405Z")+"-"+k.ID+suffix)
}

// Activate makes the staged key kid in dir sign, in every consentd that loads dir
// from then on: its file is renamed, which is atomic, to the name of a key that is
// not staged.
func Activate(dir, kid string) error {
	keys, err := LoadKeyring(dir)
	if err != nil {
		return err
	}
	for _, k := range *keys.keys.Load() {
		if k.ID != kid {
			continue
		}
		if !k.Staged {
			return fmt.Errorf("proof: key %s in %s is active already", kid, dir)
		}
		staged := keyFile(dir, k)
		k.Staged = false
		if err := os.Rename(staged, keyFile(dir, k)); err != nil {
			return fmt.Errorf("proof: activate %s: %w", kid, err)
		}
		if err := durable.SyncDir(dir); err != nil {
			return fmt.Errorf("proof: activate %s: %w", kid, err)
		}
		touch(dir)
		return nil
	}
	return fmt.Errorf("proof: no key %s in %s", kid, dir)
}

// Signer returns the newest key that is not staged.
func (kr *Keyring) Signer() *Key {
	keys := *kr.keys.Load()
	for i := len(keys) - 1; i > 0; i-- {
		if !keys[i].Staged {
			return keys[i]
		}
	}
	return keys[0]
}

// verifying returns every key kr verifies with, those it holds and those it learned,
// oldest first.
func (kr *Keyring) verifying() []publicKey {
	held := *kr.keys.Load()
	out := make([]publicKey, 0, len(held))
	for _, k := range held {
		out = append(out, k.verifying())
	}
	if learned := kr.learned.Load(); learned != nil {
		for _, l := range *learned {
			if !slices.ContainsFunc(held, func(k *Key) bool { return k.ID == l.id }) {
				out = append(out, l)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b publicKey) int { return a.created.Compare(b.created) })
	return out
}

// Public returns every key kr verifies with as published, oldest first.
func (kr *Keyring) Public() []PublicKey {
	keys := kr.verifying()
	out := make([]PublicKey, len(keys))
	for i, k := range keys {
		out[i] = k.published()
	}
	return out
}

// Published returns the document GET /v1/keys serves for the log named origin.
func (kr *Keyring) Published(origin string) (*PublicKeys, error) {
	keys := kr.verifying()
	doc := &PublicKeys{Origin: origin, Keys: make([]PublicKey, len(keys))}
	for i, k := range keys {
		vkey, err := translog.VerifierKey(origin, k.key)
		if err != nil {
			return nil, err
		}
		doc.Keys[i] = k.published()
		doc.Keys[i].LogKey = vkey
	}
	return doc, nil
}

// HasKey reports whether kr verifies with the key with id kid, held or learned.
func (kr *Keyring) HasKey(kid string) bool {
	return slices.ContainsFunc(kr.verifying(), func(k publicKey) bool { return k.id == kid })
}

// Holds reports whether kr holds the private half of the key with id kid.
func (kr *Keyring) Holds(kid string) bool {
	return slices.ContainsFunc(*kr.keys.Load(), func(k *Key) bool { return k.ID == kid })
}

// Lost returns the ids of the keys kr holds that next does not: a key directory
// reloaded must keep every key, as what a key signed stays in visitors' receipts.
func (kr *Keyring) Lost(next *Keyring) []string {
	var lost []string
	for _, k := range *kr.keys.Load() {
		if !next.Holds(k.ID) {
			lost = append(lost, k.ID)
		}
	}
	return lost
}

// NewEphemeralKeyring returns a keyring of one new key that is never written: for
// tools, benchmarks and tests, whose receipts need not outlive them.
func NewEphemeralKeyring() (*Keyring, error) {
	k, err := NewKey(time.Now())
	if err != nil {
		return nil, err
	}
	return NewKeyring(k), nil
}

// LogSigner returns the signer of the checkpoints and statements of the log named
// origin: the newest key.
func (kr *Keyring) LogSigner(origin string) (*translog.Signer, error) {
	key := kr.Signer()
	if last := kr.signer.Load(); last != nil && last.origin == origin && last.key == key {
		return last.signer, nil
	}
	signer, err := translog.NewSigner(origin, key.Private)
	if err != nil {
		return nil, err
	}
	kr.signer.Store(&logSigner{origin: origin, key: key, signer: signer})
	return signer, nil
}

// LogVerifier returns the verifier of the log named origin with every key, held or
// learned, so that what an older key signed stays verifiable.
func (kr *Keyring) LogVerifier(origin string) (*translog.Verifier, error) {
	keys := kr.verifying()
	pubs := make([]ed25519.PublicKey, len(keys))
	for i, k := range keys {
		pubs[i] = k.key
	}
	return translog.NewVerifier(origin, pubs...)
}
