package main

import (
	"context"
	"time"

	consent "github.com/mixvoip/consentd"
)

// purgeEvery is how often records past their site's retention period, and audit
// entries past the audit log's, are purged.
const purgeEvery = 24 * time.Hour

// purge removes the records past retention at once and then every m.PurgeEvery,
// under the sites loaded at the time, and the audit entries older than
// m.AuditRetention, until ctx is done.
func (m *Main) purge(ctx context.Context, store consent.Store, sites func() map[string]*consent.Site) {
	ticker := time.NewTicker(m.PurgeEvery)
	defer ticker.Stop()
	for {
		m.purgeTurn(ctx, store, sites())
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// purgeTurn is one turn of the purge, under sites. A failed purge is logged and
// tried again at the next turn: the records stay until then, nothing is lost. Of
// several instances sharing a store, only the one leading at the turn purges.
func (m *Main) purgeTurn(ctx context.Context, store consent.Store, sites map[string]*consent.Site) {
	if l, ok := store.(consent.Leader); ok && !l.Leading() {
		return
	}
	start := time.Now()
	n, err := store.Purge(ctx, consent.RetentionLimits(sites, start))
	switch {
	case ctx.Err() != nil:
		return
	case err != nil:
		m.logger.Error("purge of records past retention failed; trying again later", "err", err, "purged", n)
	case n > 0:
		m.logger.Info("purged records past retention", "records", n, "took", time.Since(start).Round(time.Millisecond))
	}
	if n, err := store.PurgeAudit(ctx, start.Add(-m.AuditRetention)); err != nil && ctx.Err() == nil {
		m.logger.Error("purge of the audit log failed; trying again later", "err", err, "purged", n)
	} else if n > 0 {
		m.logger.Info("purged audit entries past the audit log's retention", "entries", n)
	}
}
