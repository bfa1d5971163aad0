package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mixvoip/consentd/store/bolt"
)

// backup copies the store of a running consentd to --out, or as a new copy into
// --dir, then checks the copy's hash chain with the keys consentd publishes: a copy
// that does not verify is reported at once, not on the day it is needed.
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
	verifier, err := c.publishedKeys(ctx)
	if err != nil {
		return err
	}
	resp, err := c.get(ctx, "v1/dpo/backup", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	download := func(w io.Writer) (int64, error) { return io.Copy(w, resp.Body) }
	check := func(path string) error {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d bytes copied\n", path, fi.Size())
		v, err := bolt.VerifyFile(ctx, path, verifier)
		if err != nil {
			return fmt.Errorf("the copy does not open as a store (cut short?): %w", err)
		}
		return report(stdout, path, v, "consentd publishes no such key: restore its key directory from a backup")
	}
	if *dir != "" {
		_, _, err := backupDir{path: *dir, keep: *keep}.save(time.Now(), download, check)
		return err
	}
	var n int64
	err = writeWhole(*out, func(w io.Writer) (err error) {
		n, err = download(w)
		return err
	})
	if err != nil {
		return fmt.Errorf("backup cut short after %d bytes: %w", n, err)
	}
	return check(*out)
}
