package main

import (
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
	"github.com/mixvoip/consentd/translog"
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
		func(fill func(move.Destination) error) error { return dst.fill(ctx, src.place(), fill) },
		keys,
		func(copied *move.Copied) error {
			if err := checkCopy(ctx, dst, keys, copied); err != nil {
				return fmt.Errorf("%w: the copy at %s stays marked as in progress, which no consentd serves; remove it (the source was not marked as moved)", err, dst)
			}
			return nil
		})
	var moved *move.MovedError
	switch {
	case errors.As(err, &moved) && moved.Mark.Done && moved.Mark.To == dst.place():
		// A copy that the source's mark says is done, run again: what is left is
		// to complete it.
		if err := dst.complete(ctx, src.place()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: the copy to %s is complete: serve %s (--db)\n", src, dst, dst)
		return nil
	case err != nil:
		return err
	}
	if err := dst.complete(ctx, src.place()); err != nil {
		return fmt.Errorf("%s is marked as moved, but its copy at %s could not be marked as complete (run this copy again to complete it): %w", src, dst, err)
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

// checkCopy verifies the log of the copy, not yet served, with the keys: it must be
// the source's log, of the same size, extending the source's checkpoint.
func checkCopy(ctx context.Context, dst database, keys *proof.Keyring, copied *move.Copied) error {
	verifier, err := keys.LogVerifier(copied.Origin)
	if err != nil {
		return err
	}
	var archived []*consent.Checkpoint
	var size int64
	if copied.Checkpoint != nil {
		archived, size = append(archived, copied.Checkpoint), copied.Checkpoint.Size
	}
	v, err := dst.verify(ctx, verifier, archived)
	switch {
	case err != nil:
		return fmt.Errorf("the copy: %w", err)
	case !v.OK:
		return fmt.Errorf("the copy does not verify: %s", v.Problem)
	case v.Leaves != size || v.Archived != len(archived):
		return fmt.Errorf("the copy's log holds %d leaves, the source's %d", v.Leaves, size)
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

// fill makes a new store at d with fill, all or nothing, marked as a copy of from in
// progress until complete.
func (d database) fill(ctx context.Context, from string, fill func(move.Destination) error) error {
	if d.url != "" {
		return postgres.Fill(ctx, d.url, from, fill)
	}
	return bolt.Fill(d.path, from, fill)
}

// complete marks the copy of from at d as complete: a store consentd serves.
func (d database) complete(ctx context.Context, from string) error {
	if d.url != "" {
		return postgres.Complete(ctx, d.url, from)
	}
	return bolt.Complete(d.path, from)
}

// verify checks the log of the store at d, which no consentd serves, with verifier.
func (d database) verify(ctx context.Context, verifier *translog.Verifier, archived []*consent.Checkpoint) (*consent.Verification, error) {
	if d.url != "" {
		return postgres.VerifyDatabase(ctx, d.url, verifier, archived...)
	}
	return bolt.VerifyFile(ctx, d.path, verifier, archived...)
}
