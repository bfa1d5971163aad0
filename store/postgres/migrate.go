package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migrations are the schema's versions, applied in the order of their numbers:
// NNN_name.sql. A released migration is never changed; a new one follows it.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migration is one version of the schema.
type migration struct {
	version int
	name    string
	sql     string
}

// schema returns the migrations in order.
func schema() ([]migration, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, f := range files {
		number, _, _ := strings.Cut(path.Base(f), "_")
		v, err := strconv.Atoi(number)
		if err != nil || v != len(out)+1 {
			return nil, fmt.Errorf("postgres: migration %s: want number %03d", f, len(out)+1)
		}
		sql, err := fs.ReadFile(migrations, f)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: path.Base(f), sql: string(sql)})
	}
	return out, nil
}

// Migrate brings the schema of the database at url to the newest version and returns
// the migrations it applied. Each one runs in the transaction that holds the lock
// row, with the version it sets: concurrent runs wait for each other and apply each
// migration once, and a migration that fails leaves the schema as it was. A row
// lock, not an advisory lock: it holds through a connection pooler and ends with its
// transaction.
func Migrate(ctx context.Context, url string) ([]string, error) {
	all, err := schema()
	if err != nil {
		return nil, err
	}
	conn, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if err := createVersionRow(ctx, conn); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	var applied []string
	// Read committed: the lock row orders the runs; each sees what the last committed.
	err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		var version int
		if err := tx.QueryRow(ctx, "SELECT version FROM consentd_schema WHERE id = 1 FOR UPDATE").Scan(&version); err != nil {
			return err
		}
		if version > len(all) {
			return errNewer(version, len(all))
		}
		for _, m := range all[version:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			applied = append(applied, m.name)
		}
		_, err := tx.Exec(ctx, "UPDATE consentd_schema SET version = $1 WHERE id = 1", len(all))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	return applied, nil
}

// createVersionRow makes the table of the schema's version and its one row, the lock
// row, unless they exist. Two first runs at once may both try: the second's error
// says the table is there, which is all it wanted.
func createVersionRow(ctx context.Context, conn *pgx.Conn) error {
	const create = `CREATE TABLE IF NOT EXISTS consentd_schema (
		id      int PRIMARY KEY CHECK (id = 1),
		version int NOT NULL
	)`
	_, err := conn.Exec(ctx, create)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && slices.Contains([]string{"23505", "42P07", "42710"}, pgErr.Code) {
		err = nil // unique_violation, duplicate_table, duplicate_object: made by the other run
	}
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "INSERT INTO consentd_schema (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
	return err
}

// checkVersion returns an error unless the schema of the database is the newest.
func checkVersion(ctx context.Context, q querier) error {
	all, err := schema()
	if err != nil {
		return err
	}
	var version int
	err = q.QueryRow(ctx, "SELECT version FROM consentd_schema WHERE id = 1").Scan(&version)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P01", errors.Is(err, pgx.ErrNoRows):
		version = 0
	case err != nil:
		return err
	}
	switch {
	case version > len(all):
		return errNewer(version, len(all))
	case version < len(all):
		return fmt.Errorf("the database's schema is at version %d, this consentd needs %d: run consentd migrate (or serve --migrate)", version, len(all))
	}
	return nil
}

func errNewer(version, known int) error {
	return fmt.Errorf("the database's schema is at version %d, newer than this consentd knows (%d): run the consentd that migrated it", version, known)
}
