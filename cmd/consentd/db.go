package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/metrics"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/postgres"
)

// servedStore is what serve needs of a store, whichever it is.
type servedStore interface {
	consent.Store
	metrics.Store
	Origin() string
}

// database is where --db points: a bbolt file, or a PostgreSQL database by URL.
type database struct {
	path string // the bbolt file; "" for PostgreSQL
	url  string // postgres://...; "" for a bbolt file
}

// databaseOf returns the store that the flags --db and --db-file of fs, parsed,
// name: --db counts as given only on the command line, as a default from the
// environment is no choice to refuse beside --db-file.
func databaseOf(fs *flag.FlagSet, db, dbFile string) (database, error) {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "db" })
	return parseDatabase("db", db, dbFile, set)
}

// parseDatabase reads the flag --name, or the URL in the file --name-file names if
// that is set (and --name not: both would be ambiguous). A URL with a password is
// refused: the command line shows in ps and in the shell's history.
func parseDatabase(name, value, file string, set bool) (database, error) {
	if file != "" && set {
		return database{}, fmt.Errorf("--%s and --%s-file both name the store: give one", name, name)
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return database{}, fmt.Errorf("--%s-file: %w", name, err)
		}
		u := strings.TrimSpace(string(data))
		if !isPostgresURL(u) {
			return database{}, fmt.Errorf("--%s-file %s: want one postgres:// URL", name, file)
		}
		return database{url: u}, nil
	}
	if !isPostgresURL(value) {
		return database{path: value}, nil
	}
	u, err := url.Parse(value)
	if err != nil {
		return database{}, fmt.Errorf("--%s: %w", name, err)
	}
	if _, hasPassword := u.User.Password(); hasPassword || u.Query().Has("password") {
		return database{}, fmt.Errorf("--%s holds a password, which shows in ps and the shell's history: put the URL in a file for --%s-file, or the password in PGPASSFILE or PGPASSWORD", name, name)
	}
	return database{url: value}, nil
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// String names the database in messages: the file, or the URL without its password
// (one from --db-file may hold one).
func (d database) String() string {
	if d.url == "" {
		return d.path
	}
	u, err := url.Parse(d.url)
	if err != nil {
		return "the PostgreSQL database of --db-file"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// exists reports whether a store is there already.
func (d database) exists(ctx context.Context) (bool, error) {
	if d.url != "" {
		return postgres.HasLog(ctx, d.url)
	}
	_, err := os.Stat(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// open opens the store there, its log named origin and signed with keys; a store
// with a newer or older schema is refused (see migrate). lease is the sequencer's of
// a PostgreSQL store.
func (d database) open(ctx context.Context, origin string, keys *proof.Keyring, lease time.Duration, onCommit func(int, time.Duration)) (servedStore, error) {
	if d.url != "" {
		s, err := postgres.Open(ctx, d.url, postgres.Options{Origin: origin, Keys: keys, Lease: lease, OnCommit: onCommit})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := bolt.Open(d.path, bolt.Log(origin, keys), bolt.OnCommit(onCommit))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// migrate brings the schema of a PostgreSQL database to this consentd's and returns
// the migrations it applied; a bbolt file needs none.
func (d database) migrate(ctx context.Context) ([]string, error) {
	if d.url == "" {
		return nil, nil
	}
	return postgres.Migrate(ctx, d.url)
}
