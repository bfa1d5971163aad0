package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
)

// showProof prints what proves one visitor's decisions: a summary a DPO reads, each
// receipt verified here with the keys consentd publishes, or with --json the whole
// proof as consentd sent it, to keep or hand on.
func showProof(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd proof CONSENT_ID", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dpo := addDPOFlags(fs)
	asJSON := fs.Bool("json", false, "print the whole proof (records, receipts, snapshots) as JSON")
	id, err := consentArg(fs, args)
	if err != nil {
		return err
	}
	c, err := dpo.client()
	if err != nil {
		return err
	}
	p, err := c.Proof(ctx, id)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeIndented(stdout, p)
	}
	// Checked here, with the keys consentd publishes, not taken at consentd's word.
	_, verifier, err := c.Keys(ctx)
	if err != nil {
		return err
	}
	verdicts := make([]string, len(p.Records))
	failed := 0
	for i, r := range p.Records {
		vr, err := checkReceipt(verifier, r.Record, p.ConsentID)
		if err != nil {
			verdicts[i] = "NOT VERIFIED: " + err.Error()
			failed++
			continue
		}
		verdicts[i] = fmt.Sprintf("verified: leaf %d of the tree of size %d", vr.Index, vr.Checkpoint.Size)
	}
	verdict := "every receipt verified with the keys published for the log " + verifier.Origin()
	if failed > 0 {
		verdict = fmt.Sprintf("%d receipts do NOT verify with the keys published for the log %s", failed, verifier.Origin())
	}
	fmt.Fprintf(stdout, "consent %s: %d records, %s\n\n", p.ConsentID, len(p.Records), verdict)
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RECORDED\tSITE\tACTION\tSURFACE\tLANGUAGE\tCATEGORIES\tPARTNERS\tRECEIPT")
	for i, r := range p.Records {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.RecordedAt.Format(time.RFC3339), r.Site, r.Action, r.Surface,
			r.Language, consent.AnswerList(r.Choices.Categories), consent.AnswerList(r.Choices.Partners), verdicts[i])
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nWhat the visitor was shown (in full with --json):")
	for _, s := range p.Snapshots {
		fmt.Fprintf(stdout, "  %s, banner version %s, policy %s of %s, first shown %s\n",
			s.Site, s.Fingerprint, s.Policy.URL, s.Policy.Version, s.CreatedAt.Format(time.RFC3339))
	}
	return nil
}

// stats prints the decisions per site and day as a table, or with --json as
// consentd sent them.
func stats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dpo := addDPOFlags(fs)
	query := addFilterFlags(fs, "site", "from", "to")
	asJSON := fs.Bool("json", false, "print the statistics as JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	c, err := dpo.client()
	if err != nil {
		return err
	}
	s, err := c.Stats(ctx, query())
	if err != nil {
		return err
	}
	if *asJSON {
		return writeIndented(stdout, s)
	}
	if len(s.Days) == 0 {
		fmt.Fprintln(stdout, "no decisions recorded for this selection")
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprint(w, "SITE\tDAY\tTOTAL")
	for _, a := range api.Actions {
		fmt.Fprintf(w, "\t%s", strings.ToUpper(string(a)))
	}
	fmt.Fprintln(w)
	for _, d := range s.Days {
		fmt.Fprintf(w, "%s\t%s\t%d", d.Site, d.Day, d.Total)
		for _, a := range api.Actions {
			fmt.Fprintf(w, "\t%d (%.0f%%)", d.Counts[a], 100*d.Shares[a])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nSITE\tOPT-IN\tID\tGRANTED\tDENIED\tRATE\n")
	for _, t := range s.Totals {
		for _, kind := range []struct {
			name    string
			tallies map[string]api.Tally
		}{{"category", t.Categories}, {"partner", t.Partners}} {
			for _, id := range slices.Sorted(maps.Keys(kind.tallies)) {
				tl := kind.tallies[id]
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%.1f%%\n", t.Site, kind.name, id, tl.Granted, tl.Denied, 100*tl.OptInRate)
			}
		}
	}
	return w.Flush()
}
