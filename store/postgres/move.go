package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/store/move"
	"github.com/mixvoip/consentd/translog"
)

// marks is what the log's head says of a move: the store's move.Mark, nil if it has
// none, and the source it is a copy of while that copy is in progress.
type marks struct {
	found      bool // whether the database holds a store's log at all
	moved      *move.Mark
	copiedFrom string
}

// refusal returns why a store with m takes no writes, nil if it takes them.
func (m marks) refusal() error {
	switch {
	case m.moved != nil:
		return m.moved.Err()
	case m.copiedFrom != "":
		return move.InProgress(m.copiedFrom)
	}
	return nil
}

// readMarks reads the marks of a move from the log's head, locking its row if lock.
func readMarks(ctx context.Context, q querier, lock bool) (marks, error) {
	query := "SELECT moved_to, moved_at, moved_done, copied_from FROM log_head WHERE id = 1"
	if lock {
		query += " FOR UPDATE"
	}
	var to, from *string
	var at *time.Time
	var done bool
	switch err := q.QueryRow(ctx, query).Scan(&to, &at, &done, &from); {
	case errors.Is(err, pgx.ErrNoRows):
		return marks{}, nil
	case err != nil:
		return marks{}, err
	}
	m := marks{found: true}
	if to != nil {
		m.moved = &move.Mark{To: *to, Done: done}
		if at != nil {
			m.moved.At = *at
		}
	}
	if from != nil {
		m.copiedFrom = *from
	}
	return m, nil
}

// execer is what both a connection and a transaction execute statements through.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func putMark(ctx context.Context, e execer, m *move.Mark) error {
	var err error
	if m == nil {
		_, err = e.Exec(ctx, "UPDATE log_head SET moved_to = NULL, moved_at = NULL, moved_done = false WHERE id = 1")
	} else {
		_, err = e.Exec(ctx, "UPDATE log_head SET moved_to = $1, moved_at = $2, moved_done = $3 WHERE id = 1", m.To, m.At, m.Done)
	}
	return err
}

// Move copies the store in the database at url with copy, which is given the whole
// store in one snapshot of the database. The store is marked as being moved to to
// first: from then on it refuses every write, a consentd still serving it included,
// and the copy, which reads it after the mark, has every write made before. It is
// marked as moved for good once copy succeeds; if copy fails, it gets back the mark
// it had before. A store moved for good is not copied again: its copy went on.
func Move(ctx context.Context, url, to string, copy func(move.Source) error) error {
	if err := moveFrom(ctx, url, to, copy); err != nil {
		return fmt.Errorf("postgres: move: %w", err)
	}
	return nil
}

func moveFrom(ctx context.Context, url, to string, copy func(move.Source) error) error {
	var before *move.Mark
	var copied error
	err := withConn(ctx, url, func(conn *pgx.Conn) error {
		var err error
		if before, err = markMoving(ctx, conn, to); err != nil {
			return err
		}
		// Repeatable read: one snapshot of the whole store, however long the copy.
		copied = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			return copy(&stored{ctx: ctx, tx: tx, hashes: map[int64][]tlog.Hash{}})
		})
		return nil
	})
	if err != nil {
		return err
	}
	after := before
	if copied == nil {
		after = &move.Mark{To: to, At: time.Now().UTC(), Done: true}
	}
	// On a connection of its own, and even when ctx was cancelled: pgx closes the
	// copy's connection when it cannot roll back, and a store left marked as being
	// moved takes no writes.
	markCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	marked := withConn(markCtx, url, func(c *pgx.Conn) error { return putMark(markCtx, c, after) })
	return move.Outcome(copied, marked)
}

// markMoving marks the store as being moved to to, unless it is moved already or a
// copy in progress, and returns the mark it had.
func markMoving(ctx context.Context, conn *pgx.Conn, to string) (*move.Mark, error) {
	var before *move.Mark
	// Read committed: the head's row, locked, is all this reads and writes; its lock
	// waits for the writes in flight, which share-lock it.
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		m, err := readMarks(ctx, tx, true)
		switch {
		case err != nil:
			return err
		case !m.found:
			return errors.New("not a consentd store: the database holds no log")
		case m.copiedFrom != "" || m.moved != nil && m.moved.Done:
			return m.refusal()
		}
		before = m.moved
		return putMark(ctx, tx, &move.Mark{To: to, At: time.Now().UTC()})
	})
	return before, err
}

// withConn calls fn with a connection of its own to the store at url.
func withConn(ctx context.Context, url string, fn func(*pgx.Conn) error) error {
	conn, err := connectStore(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return fn(conn)
}

// Audit calls fn with each audit entry, oldest first.
func (s *stored) Audit(fn func(entry []byte) error) error {
	rows, err := s.tx.Query(s.ctx, "SELECT entry FROM audit ORDER BY id")
	if err != nil {
		return err
	}
	var entry []byte
	_, err = pgx.ForEachRow(rows, []any{&entry}, func() error { return fn(entry) })
	return err
}

// Fill makes a new store in the database at url, whose schema is the newest
// (Migrate) and which holds no store yet, with fill, all or nothing: in one
// transaction. The store is marked as a copy of from in progress, which takes no
// writes and which Open refuses, until Complete.
func Fill(ctx context.Context, url, from string, fill func(move.Destination) error) error {
	if err := fillDatabase(ctx, url, from, fill); err != nil {
		return fmt.Errorf("postgres: fill: %w", err)
	}
	return nil
}

func fillDatabase(ctx context.Context, url, from string, fill func(move.Destination) error) error {
	return withConn(ctx, url, func(conn *pgx.Conn) error {
		// Read committed: the tables filled were found empty, and the log's head,
		// whose row SetOrigin writes first and so locks, keeps a consentd starting
		// meanwhile from committing records beside the copy.
		err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			w := &filler{ctx: ctx, tx: tx}
			if err := fill(w); err != nil {
				return err
			}
			if err := w.flush(); err != nil {
				return err
			}
			// Last: the mark refuses writes, the fill's own included.
			_, err := tx.Exec(ctx, "UPDATE log_head SET copied_from = $1 WHERE id = 1", from)
			return err
		})
		if err != nil {
			return err
		}
		// Statistics now, not when autovacuum gets to it: the planner's guesses for
		// tables filled in one go are far off. Worth trying only: a role without the
		// right to analyze gets warnings, and the copy stands.
		_, _ = conn.Exec(ctx, "ANALYZE snapshots, audit, log_head, log_hashes, leaves, records, purges, links")
		return nil
	})
}

// Complete marks the copy of from in the database at url as complete: a store that
// Open takes. It does nothing to a store that is no copy in progress, and refuses a
// copy of another store.
func Complete(ctx context.Context, url, from string) error {
	err := withConn(ctx, url, func(conn *pgx.Conn) error {
		tag, err := conn.Exec(ctx, "UPDATE log_head SET copied_from = NULL WHERE id = 1 AND copied_from = $1", from)
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		m, err := readMarks(ctx, conn, false)
		switch {
		case err != nil:
			return err
		case !m.found:
			return errors.New("not a consentd store: the database holds no log")
		case m.copiedFrom != "":
			return fmt.Errorf("it is a copy of %s, not of %s", m.copiedFrom, from)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: complete the copy: %w", err)
	}
	return nil
}

// filler is a new store being filled in one transaction. The rows of the tables that
// grow with the visitors wait in batches of up to fillBatch, each table's written
// with COPY.
type filler struct {
	ctx     context.Context
	tx      pgx.Tx
	leaves  [][]any
	records [][]any
	hashes  [][]any
	audit   [][]any
}

// fillBatch is how many rows of a table wait for one COPY.
const fillBatch = 10000

var _ move.Destination = (*filler)(nil)

func (w *filler) SetOrigin(origin string) error {
	if err := translog.CheckOrigin(origin); err != nil {
		return err
	}
	// A database where a consentd only started (a head without a checkpoint, no
	// records) is as good as empty; one with a snapshot or an audit entry is not.
	// The copy's records are counted when a consentd first opens it.
	tag, err := w.tx.Exec(w.ctx, `INSERT INTO log_head (id, origin, stats_counted) VALUES (1, $1, false)
		ON CONFLICT (id) DO UPDATE SET origin = excluded.origin, stats_counted = false
		WHERE log_head.checkpoint IS NULL AND log_head.moved_to IS NULL AND log_head.copied_from IS NULL`, origin)
	if err != nil {
		return err
	}
	var used bool
	err = w.tx.QueryRow(w.ctx, `SELECT EXISTS (SELECT 1 FROM leaves) OR EXISTS (SELECT 1 FROM records)
		OR EXISTS (SELECT 1 FROM snapshots) OR EXISTS (SELECT 1 FROM audit)
		OR EXISTS (SELECT 1 FROM purges) OR EXISTS (SELECT 1 FROM links) OR EXISTS (SELECT 1 FROM log_hashes)`).Scan(&used)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 || used {
		return errors.New("the database holds a store already: a store is copied into an empty one only")
	}
	return nil
}

func (w *filler) Link(signed []byte) error {
	_, err := w.tx.Exec(w.ctx, "INSERT INTO links (statement) VALUES ($1)", signed)
	return err
}

func (w *filler) Purge(at time.Time, p *translog.Purge) error {
	_, err := w.tx.Exec(w.ctx, "INSERT INTO purges (at, site, statement) VALUES ($1, $2, $3)", at, p.Site, p.Signed)
	return err
}

func (w *filler) Snapshot(site, fingerprint string, snapshot []byte) error {
	var snap consent.Snapshot
	if err := json.Unmarshal(snapshot, &snap); err != nil {
		return fmt.Errorf("the snapshot of %s %s: %w", site, fingerprint, err)
	}
	_, err := w.tx.Exec(w.ctx, "INSERT INTO snapshots (site, fingerprint, created_at, snapshot) VALUES ($1, $2, $3, $4)",
		site, fingerprint, snap.CreatedAt, snapshot)
	return err
}

func (w *filler) Audit(entry []byte) error {
	var e consent.AuditEntry
	if err := json.Unmarshal(entry, &e); err != nil {
		return fmt.Errorf("an audit entry: %w", err)
	}
	id, err := uuid.Parse(e.ID)
	if err != nil {
		return fmt.Errorf("audit entry %q: %w", e.ID, err)
	}
	w.audit = append(w.audit, []any{id, e.At, bytes.Clone(entry)})
	if len(w.audit) >= fillBatch {
		return w.flush()
	}
	return nil
}

func (w *filler) Leaf(index int64, leaf []byte, id uuid.UUID, r *translog.StoredRecord) error {
	leaf = bytes.Clone(leaf) // COPY encodes it later
	w.leaves = append(w.leaves, []any{index, id, leaf})
	if r != nil {
		sr := storedRecord{index: index, leaf: leaf, decision: bytes.Clone(r.Decision), identifying: bytes.Clone(r.Identifying)}
		rec, _, err := sr.decode()
		if err != nil {
			return err
		}
		w.records = append(w.records, []any{id, index, r.ConsentID, rec.Site, rec.RecordedAt,
			string(rec.Action), rec.Fingerprint, rec.Language, sr.decision, sr.identifying})
	}
	if len(w.leaves) >= fillBatch {
		return w.flush()
	}
	return nil
}

func (w *filler) WriteHashes(start int64, hashes []tlog.Hash) error {
	for i, h := range hashes {
		w.hashes = append(w.hashes, []any{start + int64(i), h[:]})
	}
	if len(w.hashes) >= fillBatch {
		return w.flush()
	}
	return nil
}

func (w *filler) PutCheckpoint(signed []byte) error {
	if err := w.flush(); err != nil {
		return err
	}
	_, err := w.tx.Exec(w.ctx, "UPDATE log_head SET checkpoint = $1 WHERE id = 1", signed)
	return err
}

// flush writes the rows waiting, leaves before the records that reference them.
func (w *filler) flush() error {
	for _, t := range []struct {
		table   string
		columns []string
		rows    *[][]any
	}{
		{"leaves", []string{"leaf_index", "record_id", "leaf"}, &w.leaves},
		{"records", []string{"record_id", "leaf_index", "consent_id", "site", "recorded_at", "action", "fingerprint", "language", "decision", "identifying"}, &w.records},
		{"log_hashes", []string{"storage_index", "hash"}, &w.hashes},
		{"audit", []string{"id", "at", "entry"}, &w.audit},
	} {
		if len(*t.rows) == 0 {
			continue
		}
		if _, err := w.tx.CopyFrom(w.ctx, pgx.Identifier{t.table}, t.columns, pgx.CopyFromRows(*t.rows)); err != nil {
			return fmt.Errorf("%s: %w", t.table, err)
		}
		*t.rows = (*t.rows)[:0]
	}
	return nil
}
