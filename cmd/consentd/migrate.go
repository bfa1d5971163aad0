package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// migrate brings a PostgreSQL store's schema to this consentd's, each migration
// once, however many consentd run it at the same time; a bbolt store needs none.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "the PostgreSQL store, postgres://user@host/db; the password in PGPASSFILE or PGPASSWORD ($CONSENTD_DB)")
	dbFile := fs.String("db-file", "", "a file holding the store's postgres:// URL, password included ($CONSENTD_DB_FILE)")
	if err := setFromEnvironment(fs); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return errUsage
	}
	d, err := parseDatabase("db", *db, *dbFile, *db != "")
	if err != nil {
		return err
	}
	if d.url == "" {
		return fmt.Errorf("consentd migrate migrates a PostgreSQL store: --db postgres://... or --db-file (a bbolt store needs no migration)")
	}
	applied, err := d.migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "%s: the schema is up to date\n", d)
		return nil
	}
	for _, name := range applied {
		fmt.Fprintf(stdout, "%s: applied %s\n", d, name)
	}
	return nil
}
