package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/move"
	"github.com/mixvoip/consentd/store/postgres"
)

// copyStore is `consentd copy --from STORE --to STORE`: it moves a store between a
// bbolt file and a PostgreSQL database, either way, with its log intact, so that
// every receipt the source issued verifies against the copy. The copy must verify
// before it counts, and the source is marked as moved: it takes no more records,
// since two stores growing one log would fork it.
func copyStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the store to copy: a bbolt file no consentd has open, or postgres://user@host/db")
	fromFile := fs.String("from-file", "", "a file holding the source's postgres:// URL, password included")
	to := fs.String("to", "", "where the copy goes: a bbolt file that does not exist yet, or an empty PostgreSQL database, postgres://user@host/db (migrated as needed)")
	toFile := fs.String("to-file", "", "a file holding the destination's postgres:// URL, password included")
	keysDir := fs.String("keys", envOr("CONSENTD_KEYS", defaultKeysDir), "the signing keys, which verify the source and its copy ($CONSENTD_KEYS)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	src, err := parseDatabase("from", *from, *fromFile, *from != "")
	if err != nil {
		return err
	}
	dst, err := parseDatabase("to", *to, *toFile, *to != "")
	if err != nil {
		return err
	}
	switch {
	case src == (database{}) || dst == (database{}):
		return errors.New("consentd copy: --from STORE and --to STORE are required (a bbolt file, or a postgres:// URL)")
	case src.sameAs(dst):
		return errors.New("consentd copy: --from and --to are the same store")
	}
	keys, err := proof.LoadKeyring(*keysDir)
	if err != nil {
		return err
	}
	if _, err := dst.migrate(ctx); err != nil {
		return err
	}
	copied, err := move.Move(ctx,
		func(copy func(move.Source) error) error { return src.move(ctx, dst.place(), copy) },
		func(fill func(move.Destination) error) error { return dst.fill(ctx, fill) },
		keys,
		func(copied *move.Copied) error {
			if err := checkCopy(ctx, dst, keys, copied); err != nil {
				return fmt.Errorf("%w: remove the copy at %s (the source takes records as before)", err, dst)
			}
			return nil
		})
	if err != nil {
		return err
	}
	size := int64(0)
	if copied.Checkpoint != nil {
		size = copied.Checkpoint.Size
	}
	fmt.Fprintf(stdout, "%s: copied to %s: the log %s of %s (%s, %s, %s, %s, %s); the copy verifies, with the source's checkpoint\n",
		src, dst, copied.Origin, count(int(size), "leaf"), count(copied.Records, "record"), count(copied.Snapshots, "snapshot"),
		count(copied.Audit, "audit entry"), count(copied.Purges, "purge statement"), count(copied.Links, "link statement"))
	fmt.Fprintf(stdout, "%s is marked as moved and takes no more records: serve %s (--db)\n", src, dst)
	return nil
}

// checkCopy opens the copy as consentd serve would, and checks that its log
// verifies and is the source's: the same latest checkpoint, which it extends.
func checkCopy(ctx context.Context, dst database, keys *proof.Keyring, copied *move.Copied) error {
	s, err := dst.open(ctx, copied.Origin, keys, nil)
	if err != nil {
		return fmt.Errorf("the copy: %w", err)
	}
	defer s.Close()
	var archived []*consent.Checkpoint
	if copied.Checkpoint != nil {
		last, err := s.LastCheckpoint(ctx)
		if err != nil {
			return fmt.Errorf("the copy's checkpoint: %w", err)
		}
		if !bytes.Equal(last.Signed, copied.Checkpoint.Signed) {
			return errors.New("the copy's checkpoint is not the source's")
		}
		archived = append(archived, copied.Checkpoint)
	}
	v, err := s.Verify(ctx, archived...)
	if err != nil {
		return fmt.Errorf("the copy: %w", err)
	}
	if !v.OK {
		return fmt.Errorf("the copy does not verify: %s", v.Problem)
	}
	return nil
}

// sameAs reports whether d and o name one store.
func (d database) sameAs(o database) bool {
	if d.url != "" || o.url != "" {
		return d.url == o.url
	}
	a, errA := filepath.Abs(d.path)
	b, errB := filepath.Abs(o.path)
	return errA == nil && errB == nil && a == b
}

// place names d in the mark of a store moved there: its URL without a password, or
// its file's absolute path.
func (d database) place() string {
	if d.url != "" {
		return d.String()
	}
	if abs, err := filepath.Abs(d.path); err == nil {
		return abs
	}
	return d.path
}

// move copies the store at d with copy, and marks it as moved to the store at to.
func (d database) move(ctx context.Context, to string, copy func(move.Source) error) error {
	if d.url != "" {
		return postgres.Move(ctx, d.url, to, copy)
	}
	return bolt.Move(d.path, to, copy)
}

// fill makes a new store at d with fill, all or nothing.
func (d database) fill(ctx context.Context, fill func(move.Destination) error) error {
	if d.url != "" {
		return postgres.Fill(ctx, d.url, fill)
	}
	return bolt.Fill(d.path, fill)
}
