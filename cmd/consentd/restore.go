package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"

	"github.com/mixvoip/consentd/internal/durable"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/postgres"
	"github.com/mixvoip/consentd/translog"
)

// restore is `consentd restore --from BACKUP --db FILE --origin NEW`: it puts a
// verified backup in place of a lost store, under a new origin. The log went on
// after the backup, and visitors and monitors hold checkpoints of its newer trees:
// the same origin would fork it. The new log starts with a signed link to the last
// checkpoint of the backup.
func restore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the backup to restore, a copy that consentd backup made")
	db := fs.String("db", envOr("CONSENTD_DB", "data/consent.db"), "where the store goes; there must be no file there; or a PostgreSQL database restored with its own tools, postgres://user@host/db ($CONSENTD_DB)")
	dbFile := fs.String("db-file", "", "a file holding the restored database's postgres:// URL, password included ($CONSENTD_DB_FILE)")
	origin := fs.String("origin", "", "the new log's name, another than the backup's, such as consent.example.com/log-2; consentd serve then runs with it")
	keysDir := fs.String("keys", envOr("CONSENTD_KEYS", defaultKeysDir), "the signing keys, which verify the backup and sign the link ($CONSENTD_KEYS)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	d, err := databaseOf(fs, *db, *dbFile)
	if err != nil {
		return err
	}
	if d.url != "" {
		return restorePostgres(ctx, stdout, d, *from, *origin, *keysDir)
	}
	switch {
	case *from == "" || *origin == "":
		return errors.New("consentd restore: --from BACKUP and --origin NEW_ORIGIN are required: a restored store starts a new log")
	case isPostgresURL(*from):
		return errors.New("consentd restore --from takes a bbolt backup: a PostgreSQL database is restored with its own tools, then given a new origin with consentd restore --db postgres://... --origin NEW_ORIGIN")
	case *from == *db:
		return errors.New("consentd restore: --from and --db are the same file: restore into a new place")
	}
	if err := checkOrigin(*origin); err != nil {
		return err
	}
	if _, err := os.Stat(*db); !errors.Is(err, iofs.ErrNotExist) {
		if err == nil {
			err = fmt.Errorf("%s exists: consentd restore never replaces a store; move it away first (and keep it for analysis)", *db)
		}
		return err
	}
	keys, err := proof.LoadKeyring(*keysDir)
	if err != nil {
		return err
	}
	v, err := verifyFileWith(ctx, *from, keys, nil, nil)
	if err != nil {
		return err
	}
	if !v.OK {
		return fmt.Errorf("%s does not verify with %s (%s): restore a backup that does, consentd verify --db says which", *from, *keysDir, v.Problem)
	}
	if v.Origin == *origin {
		return fmt.Errorf("the backup's log is %s already: a restored store starts a new origin, as the log went on after the backup under that name (give another --origin, such as %s-2)", *origin, *origin)
	}
	link, err := restoreFile(*from, *db, func(tmp string) (*translog.Link, error) { return bolt.Reorigin(tmp, *origin, keys) })
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: restored from %s, with the log %s up to size %d; new records go to the log %s, which starts with a signed link to it: consentd serve keeps that name (set CONSENTD_ORIGIN=%s where it was the old one)\n",
		*db, *from, link.From, link.Size, *origin, *origin)
	return nil
}

// restoreFile copies the backup at from to a temporary file beside db, lets move
// change it, and only then gives it db's name, which must still be free: a restore
// that fails leaves nothing, and one that succeeds leaves a whole store.
func restoreFile(from, db string, move func(tmp string) (*translog.Link, error)) (*translog.Link, error) {
	src, err := os.Open(from)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dir := filepath.Dir(db)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".restore-*") // mode 0600: records are personal data
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, src)
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", from, err)
	}
	link, err := move(f.Name())
	if err != nil {
		return nil, err
	}
	return link, durable.Link(f.Name(), db)
}

// restorePostgres gives a PostgreSQL database that was restored with its own tools
// (pg_restore, a point in time) a new origin, once its log verifies: restored in
// place, there is nothing to copy.
func restorePostgres(ctx context.Context, stdout io.Writer, d database, from, origin, keysDir string) error {
	switch {
	case from != "":
		return errors.New("consentd restore --db postgres://... takes no --from: restore the database with its own tools (pg_restore, point-in-time recovery), then give it a new origin here")
	case origin == "":
		return errors.New("consentd restore: --origin NEW_ORIGIN is required: a restored store starts a new log")
	}
	if err := checkOrigin(origin); err != nil {
		return err
	}
	keys, err := proof.LoadKeyring(keysDir)
	if err != nil {
		return err
	}
	s, err := postgres.Open(ctx, d.url, postgres.Options{Keys: keys})
	if err != nil {
		return err
	}
	v, err := s.Verify(ctx)
	s.Close()
	switch {
	case err != nil:
		return err
	case !v.OK:
		return fmt.Errorf("%s does not verify with %s (%s): restore a backup that does", d, keysDir, v.Problem)
	case v.Origin == origin:
		return fmt.Errorf("the restored log is %s already: a restored store starts a new origin, as the log went on after the backup under that name (give another --origin, such as %s-2)", origin, origin)
	}
	link, err := postgres.Reorigin(ctx, d.url, origin, keys)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: the log %s up to size %d goes on as the log %s, which starts with a signed link to it: consentd serve keeps that name (set CONSENTD_ORIGIN=%s where it was the old one)\n",
		d, link.From, link.Size, origin, origin)
	return nil
}
