// Package postgres is the consent store on PostgreSQL, for operators who run it
// already and want its backups and replicas: consent.Store over pgx v5's pool, with
// the schema in migrations/ (Migrate). It passes the same conformance suite as
// store/bolt.
//
// Bytes that were hashed or signed (snapshots, and a record's leaf and parts) are
// stored as bytea, exactly as hashed; jsonb would reorder keys and rewrite numbers.
package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the consent store in one PostgreSQL database. It is safe for concurrent
// use.
type Store struct {
	pool      *pgxpool.Pool
	closeOnce sync.Once
}

// Open connects to the database at url (postgres://...; the password from
// PGPASSFILE or PGPASSWORD rather than the URL, which shows in ps) and checks that
// its schema is the one this consentd writes: Migrate makes it so.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := checkVersion(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close releases the store's connections; it is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// connect opens one connection, outside any pool, for work that holds one for its
// whole length (Migrate).
func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return conn, nil
}

// querier is what both a pool and a transaction query through.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
