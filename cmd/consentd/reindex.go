package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
)

// reindex is `consentd reindex`: it builds what the store derives from its records
// again, from them: the consent index of a bbolt store (PostgreSQL keeps its own),
// and the counters of the statistics. A store written before them gets both when it
// first opens; this is for what verification finds wrong, or a tool changed behind
// consentd's back. A bbolt store must not be in use; a PostgreSQL one is counted
// while its instances serve.
func reindex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd reindex", flag.ContinueOnError)
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
		return fmt.Errorf("%s holds no store: nothing to index", d)
	}
	keys, err := proof.LoadKeyring(*keysDir)
	if err != nil {
		return err
	}
	start := time.Now()
	if d.path != "" {
		n, err := bolt.RebuildIndex(d.path)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: indexed %s by consent id in %s\n", d, count(n, "record"), time.Since(start).Round(time.Millisecond))
	}
	store, err := d.open(ctx, "", keys, 0, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	start = time.Now()
	n, err := store.RebuildStats(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: counted %s for the statistics in %s\n", d, count(n, "record"), time.Since(start).Round(time.Millisecond))
	return store.Close()
}
