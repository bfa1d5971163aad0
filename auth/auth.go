// Package auth keeps the DPO API's bearer tokens: only each token's SHA-256 is
// stored, the token itself is shown once when it is made. A bbolt store keeps them
// in a file beside sites.yaml (not in the store, whose lock the running consentd
// holds), which consentd picks up as it does sites.yaml; a PostgreSQL store that
// several instances share keeps them in the database (store/postgres).
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// Token is one DPO API token as stored: its name, the hash of its secret, and the
// sites it may see (all if empty).
type Token struct {
	Name    string    `json:"name"`
	Hash    string    `json:"sha256"`
	Sites   []string  `json:"sites,omitempty"`
	Created time.Time `json:"created"`
	Revoked time.Time `json:"revoked,omitzero"`
}

// MaySee reports whether the token may see records of site.
func (t *Token) MaySee(site string) bool {
	return len(t.Sites) == 0 || slices.Contains(t.Sites, site)
}

// Tokens is the content of a token file.
type Tokens struct {
	List []*Token `json:"tokens"`
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// Load reads the token file at path; a missing file holds no tokens. The file holds
// hashes only, but it is still refused when others may write it.
func Load(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Tokens{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("auth: %s may be written by others (mode %v): run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	var ts Tokens
	if err := json.Unmarshal(data, &ts); err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	return &ts, nil
}

// Save writes ts to path atomically, with mode 0600.
func (ts *Tokens) Save(path string) error {
	data, err := json.MarshalIndent(ts, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}

// Add makes a new token and returns its secret, which is stored nowhere.
func (ts *Tokens) Add(name string, sites []string, now time.Time) (string, error) {
	for _, t := range ts.List {
		if t.Name == name && t.Revoked.IsZero() {
			return "", ErrNameTaken(name)
		}
	}
	secret, t, err := New(name, sites, now)
	if err != nil {
		return "", err
	}
	ts.List = append(ts.List, t)
	return secret, nil
}

// New makes a new token named name and returns its secret, which is stored nowhere,
// and the token as stored.
func New(name string, sites []string, now time.Time) (string, *Token, error) {
	if !namePattern.MatchString(name) {
		return "", nil, fmt.Errorf("auth: token name %q: use letters, digits, . _ @ -", name)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	secret := "cdt_" + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, &Token{Name: name, Hash: hash(secret), Sites: sites, Created: now.UTC()}, nil
}

// ErrNameTaken refuses a new token whose name an active token has.
func ErrNameTaken(name string) error {
	return fmt.Errorf("auth: a token named %q exists; revoke it first", name)
}

// ErrNoToken refuses to revoke a token that is not there.
func ErrNoToken(name string) error { return fmt.Errorf("auth: no active token named %q", name) }

// Revoke revokes the token named name.
func (ts *Tokens) Revoke(name string, now time.Time) error {
	for _, t := range ts.List {
		if t.Name == name && t.Revoked.IsZero() {
			t.Revoked = now.UTC()
			return nil
		}
	}
	return ErrNoToken(name)
}

// Authenticate returns the active token whose secret is secret, or nil. It compares
// in constant time against every token, so that timing tells nothing.
func (ts *Tokens) Authenticate(secret string) *Token {
	h := []byte(hash(secret))
	var found *Token
	for _, t := range ts.List {
		if subtle.ConstantTimeCompare(h, []byte(t.Hash)) == 1 && t.Revoked.IsZero() {
			found = t
		}
	}
	return found
}

func hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
