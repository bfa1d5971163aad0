package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
)

// errBroken is returned when verification finds a broken link; the report says where.
var errBroken = errors.New("the hash chain is broken")

// verify checks the hash chain of a store file that no consentd has open, such as a
// backup copy, and reports the first broken link.
func verify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", envOr("CONSENTD_DB", "data/consent.db"), "the bbolt file to check ($CONSENTD_DB)")
	keysDir := fs.String("keys", envOr("CONSENTD_KEYS", defaultKeysDir), "the signing keys, to check the checkpoints ($CONSENTD_KEYS)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return errUsage
	}
	keys, err := proof.LoadKeyring(*keysDir)
	if err != nil {
		return err
	}
	v, err := bolt.VerifyFile(ctx, *db, keys)
	if err != nil {
		return err
	}
	if !v.OK {
		fmt.Fprintf(stdout, "%s: BROKEN at place %d (record %s): %s; %d records before it verify\n", *db, v.BrokenAt, v.RecordID, v.Problem, v.Records)
		return errBroken
	}
	fmt.Fprintf(stdout, "%s: OK, %d records, every link verifies, %d signed checkpoints agree", *db, v.Records, v.Checkpoints)
	if v.Purged > 0 {
		fmt.Fprintf(stdout, "; purged past retention: %d, each covered by a signed purge", v.Purged)
	}
	if v.From > 1 {
		fmt.Fprintf(stdout, "; places 1 to %d were purged and dropped, as a signed base vouches", v.From-1)
	}
	fmt.Fprintln(stdout)
	return nil
}
