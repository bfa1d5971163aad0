package postgres

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// storedRecord is a record as a query returns it: its leaf and its parts.
type storedRecord struct {
	index       int64
	leaf        []byte
	decision    []byte
	identifying []byte
}

// scanned are the destinations of a query of the columns of storedRecord.
func (sr *storedRecord) scanned() []any {
	return []any{&sr.index, &sr.leaf, &sr.decision, &sr.identifying}
}

// recordColumns are the columns of storedRecord, of records r joined with leaves l.
const recordColumns = "r.leaf_index, l.leaf, r.decision, r.identifying FROM records r JOIN leaves l USING (leaf_index)"

// byConsent queries the columns of storedRecord for the records of one consent id.
// Each leaf is read by its index in a subquery of its own, which the planner never
// turns into a join: without statistics (a table just filled, not analyzed yet) it
// guesses thousands of records per consent id and would read every leaf to join
// one or two.
const byConsent = "SELECT r.leaf_index, (SELECT l.leaf FROM leaves l WHERE l.leaf_index = r.leaf_index), r.decision, r.identifying FROM records r WHERE r.consent_id = $1"

// decode returns the record sr holds, and its leaf.
func (sr *storedRecord) decode() (*consent.Record, *translog.Leaf, error) {
	var leaf translog.Leaf
	if err := leaf.UnmarshalBinary(sr.leaf); err != nil {
		return nil, nil, fmt.Errorf("the leaf %d: %w", sr.index, err)
	}
	r := &consent.Record{ID: leaf.RecordID.String(), Site: leaf.Site, RecordedAt: leaf.RecordedAt, LogIndex: sr.index}
	if err := translog.ParseDecisionPart(sr.decision, r); err != nil {
		return nil, nil, fmt.Errorf("record %s: %w", r.ID, err)
	}
	if len(sr.identifying) > 0 {
		if err := translog.ParseIdentifyingPart(sr.identifying, r); err != nil {
			return nil, nil, fmt.Errorf("record %s: %w", r.ID, err)
		}
	}
	return r, &leaf, nil
}

// RecordsByConsent returns the records of consentID, oldest first (by RecordedAt,
// then by ID), each with its receipt proved against the log's head.
func (s *Store) RecordsByConsent(ctx context.Context, consentID string) ([]*consent.Record, error) {
	out := []*consent.Record{}
	id, err := uuid.Parse(consentID)
	if err != nil {
		return out, nil // Append refuses such an id
	}
	if s.writer.Closed() {
		return nil, fmt.Errorf("postgres: records by consent: store closed: %w", consent.ErrUnavailable)
	}
	// Read before the query, so the records integrated since are skipped, not
	// proved against a tree that lacks them.
	head, err := s.readHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: records by consent: %w", err)
	}
	rows, err := s.pool.Query(ctx, byConsent, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: records by consent: %w", err)
	}
	var sr storedRecord
	_, err = pgx.ForEachRow(rows, sr.scanned(), func() error {
		if sr.index >= head.Size {
			return nil // committed since the head was read: the next lookup proves it
		}
		r, err := s.proved(ctx, &sr, head)
		if err == nil {
			out = append(out, r)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: records by consent: %w", err)
	}
	slices.SortFunc(out, func(a, b *consent.Record) int {
		return cmp.Or(a.RecordedAt.Compare(b.RecordedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// proved returns the record sr holds with its receipt proved against head, and the
// snapshot its leaf names.
func (s *Store) proved(ctx context.Context, sr *storedRecord, head *consent.Checkpoint) (*consent.Record, error) {
	r, leaf, err := sr.decode()
	if err != nil {
		return nil, err
	}
	var snapshot string
	snap, err := s.snapshots.Lookup(r.Site, r.Fingerprint, s.snapshotBytes)
	if err != nil {
		return nil, fmt.Errorf("record %s: its snapshot: %w", r.ID, err)
	}
	if snap != nil && snap.Digest == leaf.Snapshot {
		snapshot = snap.Text
	}
	p, err := translog.Prove(translog.Hashes(ctx, s), sr.index, head)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", r.ID, err)
	}
	if r.Receipt, err = translog.NewReceipt(p, bytes.Clone(sr.decision), bytes.Clone(sr.leaf), snapshot); err != nil {
		return nil, fmt.Errorf("record %s: %w", r.ID, err)
	}
	return r, nil
}

// Records returns up to limit records that f selects, in the order of their leaves
// in the log, after the record with id after: an order that records committed later
// never enter behind a cursor, whatever clock made their ids.
func (s *Store) Records(ctx context.Context, f consent.Filter, after string, limit int) ([]*consent.Record, error) {
	out := []*consent.Record{}
	err := s.scan(ctx, f, after, limit, func(sr *storedRecord) error {
		r, _, err := sr.decode()
		if err == nil {
			out = append(out, r)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: records: %w", err)
	}
	return out, nil
}

// AppendExport appends to dst the records Records would return in format, written
// from their stored parts (translog.AppendRecord) without decoding them into records.
func (s *Store) AppendExport(ctx context.Context, f consent.Filter, after string, limit int, format consent.ExportFormat, dst []byte) ([]byte, int, string, error) {
	n, last := 0, uuid.UUID{}
	err := s.scan(ctx, f, after, limit, func(sr *storedRecord) error {
		var leaf translog.Leaf
		if err := leaf.UnmarshalBinary(sr.leaf); err != nil {
			return fmt.Errorf("the leaf %d: %w", sr.index, err)
		}
		var err error
		if dst, err = translog.AppendRecord(dst, format, &leaf, sr.index, sr.decision, sr.identifying); err != nil {
			return fmt.Errorf("record %s: %w", leaf.RecordID, err)
		}
		n, last = n+1, leaf.RecordID
		return nil
	})
	if err != nil {
		return dst, 0, "", fmt.Errorf("postgres: export: %w", err)
	}
	if n == 0 {
		return dst, 0, "", nil
	}
	return dst, n, last.String(), nil
}

// scan calls fn with up to limit records that f selects, in the order of their
// leaves, after the record with id after.
func (s *Store) scan(ctx context.Context, f consent.Filter, after string, limit int, fn func(sr *storedRecord) error) error {
	start, err := s.cursor(ctx, after)
	if err != nil {
		return err
	}
	where, args := filterSQL(f, start)
	rows, err := s.pool.Query(ctx, "SELECT "+recordColumns+" WHERE "+where+" ORDER BY r.leaf_index LIMIT "+strconv.Itoa(limit), args...)
	if err != nil {
		return err
	}
	var sr storedRecord
	_, err = pgx.ForEachRow(rows, sr.scanned(), func() error { return fn(&sr) })
	return err
}

// cursor returns the leaf index of the record with id after, -1 for "": its leaf
// stays after the record is purged, so a cursor stays valid.
func (s *Store) cursor(ctx context.Context, after string) (int64, error) {
	if after == "" {
		return -1, nil
	}
	id, err := uuid.Parse(after)
	if err != nil {
		return 0, consent.Errorf(consent.EInvalid, "cursor %q is not a record id", after)
	}
	var index int64
	err = s.pool.QueryRow(ctx, "SELECT leaf_index FROM leaves WHERE record_id = $1", id).Scan(&index)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, consent.Errorf(consent.EInvalid, "cursor %q names no record of this store", after)
	}
	return index, err
}

// filterSQL returns the condition of a query of the records after leaf index start
// that f selects, and its arguments: only the conditions f sets, so that the planner
// walks the leaf index and filters, whatever f is.
func filterSQL(f consent.Filter, start int64) (string, []any) {
	// The start on both tables: PostgreSQL carries equalities across a join, not
	// ranges, and would read the leaves from the first one on.
	where, args := []string{"r.leaf_index > $1", "l.leaf_index > $1"}, []any{start}
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if len(f.Sites) > 0 {
		add("r.site = ANY($?)", f.Sites)
	}
	if !f.From.IsZero() {
		add("r.recorded_at >= $?", f.From)
	}
	if !f.To.IsZero() {
		add("r.recorded_at < $?", f.To)
	}
	if f.Action != "" {
		add("r.action = $?", string(f.Action))
	}
	if f.Fingerprint != "" {
		add("r.fingerprint = $?", f.Fingerprint)
	}
	if f.Language != "" {
		add("r.language = $?", f.Language)
	}
	return strings.Join(where, " AND "), args
}

// nonNil returns s, or an empty slice for nil: PostgreSQL's cardinality of NULL is
// NULL.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
