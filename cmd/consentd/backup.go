package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	consent "github.com/mixvoip/consentd"
)

// backup copies the store of a running consentd to --out, or as a new copy into
// --dir, then checks the copy's log with the keys consentd publishes, of its log: a
// copy that does not verify is reported at once, not on the day it is needed.
func backup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dpo := addDPOFlags(fs)
	out := fs.String("out", "", "the file to write (mode 0600); it appears only once the copy is complete")
	dir := fs.String("dir", "", "instead of --out: a directory of copies named consent-<UTC time>.db, of which the newest --keep stay")
	keep := fs.Int("keep", 14, "with --dir: the verified copies to keep")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	switch {
	case (*out == "") == (*dir == ""):
		return errors.New("consentd backup: either --out FILE or --dir DIR is required")
	case *keep < 1:
		return errors.New("consentd backup: --keep must be at least 1")
	}
	c, err := dpo.client()
	if err != nil {
		return err
	}
	_, verifier, err := c.Keys(ctx)
	if err != nil {
		return err
	}
	resp, err := c.Get(ctx, "v1/dpo/backup", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	download := func(w io.Writer) (int64, error) { return io.Copy(w, resp.Body) }
	var v *consent.Verification
	check := func(tmp string) (err error) {
		v, err = verifyCopy(ctx, tmp, verifier)
		return err
	}
	var path string
	var size int64
	if *dir != "" {
		path, size, err = backupDir{path: *dir, keep: *keep}.save(ctx, time.Now(), download, check)
	} else {
		path = *out
		err = writeChecked(ctx, path, func(w io.Writer) (err error) {
			size, err = download(w)
			return err
		}, check)
		var unverified *unverifiedError
		if errors.As(err, &unverified) {
			path = unverified.path
		}
	}
	if v == nil || ctx.Err() != nil {
		return err // nothing was verified, or not to the end: the error says why
	}
	fmt.Fprintf(stdout, "%s: %d bytes copied\n", path, size)
	if err := report(stdout, path, v, "consentd publishes no such key: restore its key directory from a backup"); err != nil {
		return err
	}
	return err
}
