package translog

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Checker recomputes a stored tree leaf by leaf and compares every stored hash with
// the one recomputed: what full verification of a store does. It keeps nothing but a
// count: the stored hashes it reads have all been checked by the time it reads them.
type Checker struct {
	stored tlog.HashReader
	n      int64
}

// NewChecker returns a checker of the tree whose stored hashes r reads.
func NewChecker(r tlog.HashReader) *Checker { return &Checker{stored: r} }

// Size returns how many leaves were checked.
func (c *Checker) Size() int64 { return c.n }

// Add checks the stored hashes of the next leaf, whose record hash is leaf. Its error
// names the leaf whose stored hashes are missing or disagree; after one, the checker
// must not be used.
func (c *Checker) Add(leaf tlog.Hash) error {
	want, err := tlog.StoredHashesForRecordHash(c.n, leaf, c.stored)
	if err != nil {
		return fmt.Errorf("leaf %d: the stored hashes before it: %w", c.n, err)
	}
	start := tlog.StoredHashIndex(0, c.n)
	indexes := make([]int64, len(want))
	for i := range indexes {
		indexes[i] = start + int64(i)
	}
	got, err := c.stored.ReadHashes(indexes)
	if err != nil {
		return fmt.Errorf("leaf %d: its stored hashes: %w", c.n, err)
	}
	for i := range want {
		if got[i] != want[i] {
			return fmt.Errorf("leaf %d: a stored hash differs from the one its bytes give", c.n)
		}
	}
	c.n++
	return nil
}

// Check reports whether cp, opened already, is a checkpoint of the checked tree: its
// size at most the leaves checked, and its root the root of the tree of that size.
func (c *Checker) Check(cp *Checkpoint) error {
	if cp.Size > c.n {
		return fmt.Errorf("checkpoint of size %d: the log holds %d leaves", cp.Size, c.n)
	}
	root, err := tlog.TreeHash(cp.Size, c.stored)
	if err != nil {
		return fmt.Errorf("checkpoint of size %d: %w", cp.Size, err)
	}
	if root != tlog.Hash(cp.Root) {
		return fmt.Errorf("checkpoint of size %d: its root is not the log's at that size", cp.Size)
	}
	return nil
}
