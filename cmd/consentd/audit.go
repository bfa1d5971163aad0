package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"
)

// audit prints the audit log of the DPO API, oldest first: who called what, when,
// from where, and with what outcome; with --consent only the calls about one
// visitor's consent id.
func audit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dpo := addDPOFlags(fs)
	consentID := fs.String("consent", "", "only the calls about this consent id")
	after := fs.String("after", "", "start after the entry with this id (the cursor printed after a full page)")
	limit := fs.Int("limit", 100, "at most this many entries, 1 to 1000")
	asJSON := fs.Bool("json", false, "print the page as JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	c, err := dpo.client()
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *consentID != "" {
		q.Set("consent_id", *consentID)
	}
	if *after != "" {
		q.Set("after", *after)
	}
	page, err := c.Audit(ctx, q)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeIndented(stdout, page)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "AT\tTOKEN\tCLIENT\tCALL\tSTATUS")
	for _, e := range page.Entries {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s %s\t%s\n", e.At.Format(time.RFC3339), orDash(e.Token), orDash(e.Client), e.Method, e.Path, e.Outcome())
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(stdout, "\nmore entries: consentd audit --after %s\n", page.Next)
	}
	return nil
}
