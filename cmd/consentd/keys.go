package main

import (
	"context"
	"slices"
	"time"

	"github.com/mixvoip/consentd/proof"
)

// sharedKeys is a store whose instances publish their public keys to each other,
// endorsed by their own keys, so that each verifies and publishes what the others
// sign with: PostgreSQL.
type sharedKeys interface {
	PublishKeys(ctx context.Context, keys *proof.Keyring) error
	LearnKeys(ctx context.Context) (learned, refused []string, err error)
}

// learnKeys learns the keys that other instances published every m.ReloadEvery,
// until ctx is done, so that GET /v1/keys answers the same on every instance within
// that time. It logs the keys learned, and keys in the database that no key here
// endorses, each time those change: an instance given a key of its own, or rows
// written by someone without a private key.
func (m *Main) learnKeys(ctx context.Context, store sharedKeys) {
	var lastRefused []string
	var lastErr error
	m.every(ctx, func() {
		learned, refused, err := store.LearnKeys(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if lastErr == nil {
				m.logger.Error("the keys of the other instances were not read from the database; those known keep verifying", "err", err)
			}
			lastErr = err
			return
		}
		lastErr = nil
		if len(learned) > 0 {
			m.logger.Info("learned keys that another instance published, endorsed by ours", "kids", learned)
		}
		if !slices.Equal(refused, lastRefused) && len(refused) > 0 {
			m.logger.Warn("the database holds keys that no key here endorses, which this instance does not trust: give every instance a key directory that shares a key with the others' (docs/operations.md)", "kids", refused)
		}
		lastRefused = refused
	})
}

// every calls f every m.ReloadEvery until ctx is done.
func (m *Main) every(ctx context.Context, f func()) {
	ticker := time.NewTicker(m.ReloadEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			f()
		}
	}
}
