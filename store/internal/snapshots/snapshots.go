// Package snapshots keeps, per site and fingerprint, a stored snapshot as records
// name it: its bytes, which receipts carry, and their digest, which leaves hold.
// Snapshots are never overwritten, so an entry never goes stale; one not stored yet
// is looked up again next time.
package snapshots

import (
	"crypto/sha256"
	"encoding/json"
	"sync"
)

// Stored is a stored snapshot: its bytes, as one string that every receipt shares,
// and their digest.
type Stored struct {
	Text   string
	Digest [32]byte
}

// Cache keeps Stored snapshots. The zero Cache is ready for use.
type Cache struct {
	mu sync.RWMutex
	m  map[key]*Stored
}

type key struct{ site, fingerprint string }

// Lookup returns the stored snapshot of site and fingerprint, nil if there is none,
// reading its stored JSON with get (nil if none) the first time. An error of get is
// returned: a snapshot that could not be read is not one that is not stored.
func (c *Cache) Lookup(site, fingerprint string, get func(site, fingerprint string) ([]byte, error)) (*Stored, error) {
	k := key{site, fingerprint}
	c.mu.RLock()
	s, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return s, nil
	}
	value, err := get(site, fingerprint)
	if err != nil || value == nil || !json.Valid(value) {
		return nil, err
	}
	s = &Stored{Text: string(value), Digest: sha256.Sum256(value)}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[key]*Stored{}
	}
	c.m[k] = s
	c.mu.Unlock()
	return s, nil
}
