// Package proof makes consent records provable to a third party: ed25519 signing
// keys that rotate, and the signed receipts of records.
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
	"time"

	consent "github.com/mixvoip/consentd"
)

// Algorithm names the signature scheme in published keys and receipts.
const Algorithm = "Ed25519"

// Key is one ed25519 signing key.
type Key struct {
	ID      string // derived from the public key, see KeyID
	Private ed25519.PrivateKey
	Created time.Time
}

// PublicKey is a key as GET /v1/keys publishes it: enough for anyone to verify a
// receipt without trusting consentd.
type PublicKey struct {
	ID        string    `json:"kid"`
	Algorithm string    `json:"alg"`
	Key       string    `json:"public_key"` // the 32-byte key, base64url without padding
	Created   time.Time `json:"created"`
}

// KeyID returns the id of a public key: "ed25519-" and the first 16 hex digits of
// its SHA-256, so that the id cannot name another key than the one it came from.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519-" + hex.EncodeToString(sum[:8])
}

// Public returns k as published.
func (k *Key) Public() PublicKey {
	pub := k.Private.Public().(ed25519.PublicKey)
	return PublicKey{ID: k.ID, Algorithm: Algorithm, Key: base64.RawURLEncoding.EncodeToString(pub), Created: k.Created}
}

// Keyring holds every key in a directory: the newest signs, all of them verify, so
// that rotating to a new key leaves old receipts verifiable.
type Keyring struct {
	keys []*Key // oldest first
}

// ErrNoKeys is returned by LoadKeyring for a directory without keys.
var ErrNoKeys = errors.New("no signing key")

const keySuffix = ".key"

// LoadKeyring reads the *.key files in dir. It refuses any key file that others than
// its owner may read: a leaked private key lets anyone forge proofs.
func LoadKeyring(dir string) (*Keyring, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*"+keySuffix))
	if err != nil {
		return nil, fmt.Errorf("proof: keys in %s: %w", dir, err)
	}
	kr := &Keyring{}
	for _, name := range names {
		k, err := readKey(name)
		if err != nil {
			return nil, err
		}
		kr.keys = append(kr.keys, k)
	}
	if len(kr.keys) == 0 {
		return nil, fmt.Errorf("proof: %s: %w (create one with: consentd keygen --keys %s)", dir, ErrNoKeys, dir)
	}
	return NewKeyring(kr.keys...), nil
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
	return &Key{ID: KeyID(priv.Public().(ed25519.PublicKey)), Private: priv, Created: created}, nil
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

// NewKeyring returns a keyring of keys; the one created last signs.
func NewKeyring(keys ...*Key) *Keyring {
	kr := &Keyring{keys: slices.Clone(keys)}
	slices.SortStableFunc(kr.keys, func(a, b *Key) int { return a.Created.Compare(b.Created) })
	return kr
}

// Generate creates a new key in dir (created with mode 0700 if missing) as a PKCS#8
// PEM file with mode 0600; from then on it is the newest key and signs.
func Generate(dir string, now time.Time) (*Key, error) {
	k, err := NewKey(now)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("proof: encode key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	// Created to the nanosecond: two keys made in the same second still have an order,
	// and the newest signs.
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Created": k.Created.Format(time.RFC3339Nano)}, Bytes: der})
	name := filepath.Join(dir, strings.ReplaceAll(k.Created.Format("20060102T150405Z"), ":", "")+"-"+k.ID+keySuffix)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("proof: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("proof: write %s: %w", name, err)
	}
	return k, f.Close()
}

// Signer returns the newest key.
func (kr *Keyring) Signer() *Key { return kr.keys[len(kr.keys)-1] }

// Public returns every key as published, oldest first.
func (kr *Keyring) Public() []PublicKey {
	out := make([]PublicKey, len(kr.keys))
	for i, k := range kr.keys {
		out[i] = k.Public()
	}
	return out
}

// Verify reports whether sig is a signature of msg by the key with id kid.
func (kr *Keyring) Verify(kid string, msg, sig []byte) bool {
	pub := kr.publicKey(kid)
	return pub != nil && ed25519.Verify(pub, msg, sig)
}

// publicKey returns the public half of the key with id kid, nil if there is none.
func (kr *Keyring) publicKey(kid string) ed25519.PublicKey {
	for _, k := range kr.keys {
		if k.ID == kid {
			return k.Private.Public().(ed25519.PublicKey)
		}
	}
	return nil
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

// SignCheckpoint signs c with the newest key.
func (kr *Keyring) SignCheckpoint(c *consent.Checkpoint) {
	k := kr.Signer()
	c.KeyID = k.ID
	c.Signature = base64.RawURLEncoding.EncodeToString(ed25519.Sign(k.Private, c.Message()))
}

// VerifyCheckpoint reports whether c's signature holds.
func (kr *Keyring) VerifyCheckpoint(c *consent.Checkpoint) bool {
	return checkpointSigned(c, kr.publicKey(c.KeyID))
}
