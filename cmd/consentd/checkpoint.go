package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mixvoip/consentd/client"
)

// showCheckpoint prints the newest checkpoint of a running consentd's log, once
// it verifies with the keys consentd publishes; --out keeps the signed note, which
// the log must extend from then on (consentd verify --checkpoint,
// verify-receipt --against).
func showCheckpoint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd checkpoint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", envOr("CONSENTD_URL", "http://localhost:8080"), "the running consentd ($CONSENTD_URL)")
	out := fs.String("out", "", "also keep the signed checkpoint in this file")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	c, err := newClient("--url", *base, "")
	if err != nil {
		return err
	}
	_, verifier, err := c.Keys(ctx)
	if err != nil {
		return err
	}
	cp, err := newestCheckpoint(ctx, c, verifier)
	if errors.Is(err, client.ErrNoCheckpoint) {
		fmt.Fprintf(stdout, "the log %s at %s has no checkpoint yet (no record in it)\n", verifier.Origin(), c.URL())
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "log %s: %s, root %s; signed, verified with the keys %s publishes\n",
		cp.Origin, count(int(cp.Size), "leaf"), base64.StdEncoding.EncodeToString(cp.Root[:]), c.URL())
	if !cp.SignedAt.IsZero() {
		fmt.Fprintf(stdout, "signed %s, %s ago\n", cp.SignedAt.UTC().Format(time.RFC3339), time.Since(cp.SignedAt).Round(time.Second))
	}
	if *out == "" {
		return nil
	}
	if err := writeWhole(*out, func(w io.Writer) error {
		_, err := w.Write(cp.Signed)
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "kept in %s\n", *out)
	return nil
}
