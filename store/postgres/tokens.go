package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mixvoip/consentd/auth"
)

// Tokens returns the DPO API's tokens in the database, revoked ones included: every
// instance reads them there, so that a token added or revoked counts on all of them.
func (s *Store) Tokens(ctx context.Context) (*auth.Tokens, error) {
	ts, err := readTokens(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("postgres: tokens: %w", err)
	}
	return ts, nil
}

// ReadTokens returns the tokens in the database at url, for consentd token.
func ReadTokens(ctx context.Context, url string) (*auth.Tokens, error) {
	var ts *auth.Tokens
	err := withConn(ctx, url, func(conn *pgx.Conn) error {
		var err error
		ts, err = readTokens(ctx, conn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: tokens: %w", err)
	}
	return ts, nil
}

func readTokens(ctx context.Context, q querier) (*auth.Tokens, error) {
	rows, err := q.Query(ctx, "SELECT name, sha256, sites, created, revoked FROM tokens ORDER BY created, name")
	if err != nil {
		return nil, err
	}
	ts := &auth.Tokens{}
	var t auth.Token
	var revoked *time.Time
	_, err = pgx.ForEachRow(rows, []any{&t.Name, &t.Hash, &t.Sites, &t.Created, &revoked}, func() error {
		token := t
		if len(token.Sites) == 0 {
			token.Sites = nil // all sites, as in a token file
		}
		token.Created = token.Created.UTC()
		if revoked != nil {
			token.Revoked = revoked.UTC()
		}
		ts.List = append(ts.List, &token)
		return nil
	})
	return ts, err
}

// AddToken stores t, a new token, in the database at url; a token not revoked with
// the same name refuses it.
func AddToken(ctx context.Context, url string, t *auth.Token) error {
	err := withConn(ctx, url, func(conn *pgx.Conn) error {
		sites := t.Sites
		if sites == nil {
			sites = []string{}
		}
		_, err := conn.Exec(ctx, "INSERT INTO tokens (sha256, name, sites, created) VALUES ($1, $2, $3, $4)", t.Hash, t.Name, sites, t.Created)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.ConstraintName == "tokens_active_name" {
			return auth.ErrNameTaken(t.Name)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: add token: %w", err)
	}
	return nil
}

// RevokeToken revokes the token named name, not revoked yet, in the database at url.
func RevokeToken(ctx context.Context, url, name string, at time.Time) error {
	err := withConn(ctx, url, func(conn *pgx.Conn) error {
		tag, err := conn.Exec(ctx, "UPDATE tokens SET revoked = $2 WHERE name = $1 AND revoked IS NULL", name, at)
		if err == nil && tag.RowsAffected() == 0 {
			return auth.ErrNoToken(name)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke token: %w", err)
	}
	return nil
}
