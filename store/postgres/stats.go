package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// Stats returns the counters of sites (all if none) for the days from from up to,
// not including, to.
func (s *Store) Stats(ctx context.Context, sites []string, from, to string) ([]*consent.StatsRow, error) {
	var bounds [2]*time.Time
	for i, day := range []string{from, to} {
		if day == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, day)
		if err != nil {
			return nil, fmt.Errorf("postgres: stats: %w", consent.Errorf(consent.EInvalid, "%q is not a date (2006-01-02)", day))
		}
		bounds[i] = &t
	}
	if sites == nil {
		sites = []string{}
	}
	rows, err := s.pool.Query(ctx, `SELECT site, day, language, fingerprint, counters FROM stats
		WHERE (cardinality($1::text[]) = 0 OR site = ANY($1)) AND ($2::date IS NULL OR day >= $2) AND ($3::date IS NULL OR day < $3)`,
		sites, bounds[0], bounds[1])
	if err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", err)
	}
	out := []*consent.StatsRow{}
	var k consent.StatsKey
	var day time.Time
	var counters []byte
	_, err = pgx.ForEachRow(rows, []any{&k.Site, &day, &k.Language, &k.Fingerprint, &counters}, func() error {
		row := &consent.StatsRow{Key: k, Counters: consent.Counters{}}
		row.Key.Day = day.Format(time.DateOnly)
		out = append(out, row)
		return json.Unmarshal(counters, &row.Counters)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", err)
	}
	return out, nil
}

// queueStats queues, into b, the addition of counts to the counters.
func queueStats(b *pgx.Batch, counts consent.Counts) error {
	var sites, languages, fingerprints, counters []string
	var days []time.Time
	for k, c := range counts {
		day, err := time.Parse(time.DateOnly, k.Day)
		if err != nil {
			return err
		}
		encoded, err := json.Marshal(c)
		if err != nil {
			return err
		}
		sites, days, languages, fingerprints = append(sites, k.Site), append(days, day), append(languages, k.Language), append(fingerprints, k.Fingerprint)
		counters = append(counters, string(encoded))
	}
	b.Queue(`INSERT INTO stats AS s (site, day, language, fingerprint, counters)
		SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::jsonb[])
		ON CONFLICT (site, day, language, fingerprint) DO UPDATE SET counters = consentd_add_counters(s.counters, excluded.counters)`,
		sites, days, languages, fingerprints, counters)
	return nil
}

// countRows adds the records of rows to counts.
func countRows(counts consent.Counts, rows []*row) error {
	for _, r := range rows {
		rec := &consent.Record{Site: r.site, RecordedAt: r.recordedAt}
		if err := translog.ParseDecisionPart(r.decision, rec); err != nil {
			return fmt.Errorf("record %s: %w", r.recordID, err)
		}
		counts.Count(rec)
	}
	return nil
}

// countBatch is how many records one query of RebuildStats counts.
const countBatch = 50_000

// RebuildStats counts every record in the database and replaces the counters with
// what it counted. It counts the records integrated before it began a page at a
// time, while the instances go on, and those integrated since in the transaction
// that replaces the counters, which holds the log's head: integrations wait for it.
func (s *Store) RebuildStats(ctx context.Context) (int, error) {
	var size int64
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(leaf_index) + 1, 0) FROM leaves").Scan(&size); err != nil {
		return 0, fmt.Errorf("postgres: rebuild stats: %w", err)
	}
	counts := consent.Counts{}
	n := 0
	for from := int64(0); from < size; from += countBatch {
		counted, err := countRecords(ctx, s.pool, counts, from, min(from+countBatch, size))
		if err != nil {
			return 0, fmt.Errorf("postgres: rebuild stats: %w", err)
		}
		n += counted
	}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		// The head's lock first, then the tree's size in a statement of its own: in
		// read committed, a statement that waited for the lock still reads from the
		// snapshot it began with, and would miss the integration it waited for, whose
		// counters the DELETE below drops.
		if _, err := tx.Exec(ctx, "SELECT 1 FROM log_head WHERE id = 1 FOR UPDATE"); err != nil {
			return err
		}
		var now int64
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(leaf_index) + 1, 0) FROM leaves").Scan(&now); err != nil {
			return err
		}
		counted, err := countRecords(ctx, tx, counts, size, now)
		if err != nil {
			return err
		}
		n += counted
		b := &pgx.Batch{}
		b.Queue("DELETE FROM stats")
		if err := queueStats(b, counts); err != nil {
			return err
		}
		b.Queue("UPDATE log_head SET stats_counted = true WHERE id = 1")
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: rebuild stats: %w", err)
	}
	return n, nil
}

// countRecords adds to counts the records whose leaves are from from up to, not
// including, to, and returns how many there were.
func countRecords(ctx context.Context, q querier, counts consent.Counts, from, to int64) (int, error) {
	rows, err := q.Query(ctx, "SELECT record_id, site, recorded_at, decision FROM records WHERE leaf_index >= $1 AND leaf_index < $2", from, to)
	if err != nil {
		return 0, err
	}
	var page []*row
	var r row
	_, err = pgx.ForEachRow(rows, []any{&r.recordID, &r.site, &r.recordedAt, &r.decision}, func() error {
		copied := r
		page = append(page, &copied)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(page), countRows(counts, page)
}
