package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/metrics"
)

// sharedTokens is a store that keeps the DPO API's tokens itself, for every instance
// of consentd on it: PostgreSQL.
type sharedTokens interface {
	Tokens(ctx context.Context) (*auth.Tokens, error)
}

// watchTokens reads the tokens of store every m.ReloadEvery, until ctx is done, and
// gives the server those that changed since last, starting from loaded: a token
// added or revoked on one instance counts on all of them within that time. A read
// that fails keeps the tokens read before, as a token file that does not load does.
func (m *Main) watchTokens(ctx context.Context, store sharedTokens, loaded *auth.Tokens) {
	last, _ := json.Marshal(loaded)
	var lastErr error
	m.every(ctx, func() {
		tokens, err := store.Tokens(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			m.srv.TokensFailed(err)
			if lastErr == nil {
				m.logger.Error("the DPO API's tokens were not read from the database; those read before keep serving", "err", err)
				m.metrics.Reloaded(metrics.FileTokens, time.Now(), err)
			}
			lastErr = err
			return
		}
		next, _ := json.Marshal(tokens)
		if lastErr == nil && string(next) == string(last) {
			return
		}
		m.srv.SetTokens(tokens)
		m.metrics.Reloaded(metrics.FileTokens, time.Now(), nil)
		m.logger.Info("reloaded the DPO API's tokens from the database", "tokens", len(tokens.List))
		last, lastErr = next, nil
	})
}

// warnTokenFileUnread warns of a token file with tokens beside a PostgreSQL store,
// which keeps its tokens in the database: whoever made them may expect them to work.
func (m *Main) warnTokenFileUnread() {
	if ts, err := auth.Load(m.TokensPath); err == nil && len(ts.List) > 0 {
		m.logger.Warn("the token file is not read: a PostgreSQL store keeps the DPO API's tokens in its database; add them there with consentd token add NAME --db", "file", m.TokensPath)
	}
}
