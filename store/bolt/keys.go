package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

// bucketKeys holds as its keys the id of every key that signed a receipt or a
// statement in the store, so that a store never goes on under a keyring that lacks
// one: whatever that key signed would no longer verify.
var bucketKeys = []byte("keys")

// KeyIDs returns the ids of the keys that signed receipts or statements in the
// store, sorted: a keyring that lacks one cannot vouch for all the store holds.
func (s *Store) KeyIDs(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: key ids: %w", err)
	}
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: key ids: %w", err)
	}
	return ids, nil // bbolt keeps keys sorted
}

// MissingKeysError is returned by Open when a signer is set and lacks keys that
// signed receipts or statements in the store: with its key directory lost or
// replaced, a store that went on would sign under a new key, and what the old ones
// signed would no longer verify.
type MissingKeysError struct {
	Path   string
	KeyIDs []string // sorted
}

func (e *MissingKeysError) Error() string {
	return fmt.Sprintf("bolt: open %s: it holds records or checkpoints signed by %s, which the signing keys lack", e.Path, strings.Join(e.KeyIDs, ", "))
}

// findStatementKeys adds the ids of the keys that signed the store's checkpoints,
// purges and base to s.keyIDs.
func (s *Store) findStatementKeys(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketCheckpoints, bucketPurges, bucketBase} {
		b := tx.Bucket(name)
		if b == nil {
			continue
		}
		err := b.ForEach(func(_, v []byte) error {
			var cp consent.Checkpoint
			if json.Unmarshal(v, &cp) == nil && cp.KeyID != "" {
				s.keyIDs[cp.KeyID] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
