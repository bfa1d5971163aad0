package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mixvoip/consentd/proof"
)

// rebuildStats is `consentd rebuild-stats`: it counts the store's records again for
// the statistics and replaces the counters with what it counted. A store written
// before the counters has its records counted when it first opens; this is for the
// counters of a store that a tool changed behind consentd's back. A bbolt store must
// not be in use; a PostgreSQL one counts while its instances serve.
func rebuildStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd rebuild-stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", envOr("CONSENTD_DB", "data/consent.db"), "the store: a bbolt file not in use, or postgres://user@host/db ($CONSENTD_DB)")
	dbFile := fs.String("db-file", "", "a file holding the store's postgres:// URL, password included ($CONSENTD_DB_FILE)")
	keysDir := fs.String("keys", envOr("CONSENTD_KEYS", defaultKeysDir), "the signing keys, which open the store's log ($CONSENTD_KEYS)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	d, err := databaseOf(fs, *db, *dbFile)
	if err != nil {
		return err
	}
	switch exists, err := d.exists(ctx); {
	case err != nil:
		return err
	case !exists:
		return fmt.Errorf("%s holds no store: nothing to count", d)
	}
	keys, err := proof.LoadKeyring(*keysDir)
	if err != nil {
		return err
	}
	store, err := d.open(ctx, "", keys, 0, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	start := time.Now()
	n, err := store.RebuildStats(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: counted %s in %s\n", d, count(n, "record"), time.Since(start).Round(time.Millisecond))
	return store.Close()
}
