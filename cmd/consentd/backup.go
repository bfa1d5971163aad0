package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
)

// backup copies the store of a running consentd to --out, then checks the copy's hash
// chain with the keys consentd publishes: a copy that does not verify is reported
// at once, not on the day it is needed.
func backup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dpo := addDPOFlags(fs)
	out := fs.String("out", "", "the file to write (mode 0600); it appears only once the copy is complete")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("consentd backup: --out FILE is required")
	}
	c, err := dpo.client()
	if err != nil {
		return err
	}
	doc, err := c.getJSON(ctx, "v1/keys", nil)
	if err != nil {
		return err
	}
	keys, err := proof.ReadPublicKeys(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("the keys consentd publishes: %w", err)
	}
	verifier, err := proof.NewVerifier(keys)
	if err != nil {
		return fmt.Errorf("the keys consentd publishes: %w", err)
	}
	resp, err := c.get(ctx, "v1/dpo/backup", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var n int64
	err = writeWhole(*out, func(w io.Writer) (err error) {
		n, err = io.Copy(w, resp.Body)
		return err
	})
	if err != nil {
		return fmt.Errorf("backup cut short after %d bytes: %w", n, err)
	}
	fmt.Fprintf(stdout, "%s: %d bytes copied\n", *out, n)
	v, err := bolt.VerifyFile(ctx, *out, verifier)
	if err != nil {
		return fmt.Errorf("the copy does not open as a store (cut short?): %w", err)
	}
	return report(stdout, *out, v, "consentd publishes no such key: restore its key directory from a backup")
}
