package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
)

// proofDocument is the answer of GET /v1/dpo/consents/{consent_id}.
type proofDocument struct {
	ConsentID string `json:"consent_id"`
	Records   []struct {
		consent.Record
		ReceiptValid bool   `json:"receipt_valid"`
		ReceiptError string `json:"receipt_error"`
	} `json:"records"`
	Snapshots []consent.Snapshot `json:"snapshots"`
}

// showProof prints what proves one visitor's decisions: a summary a DPO reads, each
// receipt verified here with the keys consentd publishes, or with --json the whole
// proof as consentd sent it, to keep or hand on.
func showProof(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd proof CONSENT_ID", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dpo := addDPOFlags(fs)
	asJSON := fs.Bool("json", false, "print the whole proof (records, receipts, snapshots) as JSON")
	id, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if _, err := uuid.Parse(id); err != nil {
		return fmt.Errorf("consentd proof: %q is not a consent id (a UUID, from the visitor's consent cookie or receipt)", id)
	}
	c, err := dpo.client()
	if err != nil {
		return err
	}
	doc, err := c.getJSON(ctx, "v1/dpo/consents/"+id, nil)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeIndented(stdout, doc)
	}
	var p proofDocument
	if err := json.Unmarshal(doc, &p); err != nil {
		return fmt.Errorf("consentd sent an unreadable proof: %w", err)
	}
	// Checked here, with the keys consentd publishes, not taken at consentd's word.
	_, verifier, err := c.publishedKeys(ctx)
	if err != nil {
		return err
	}
	verdicts := make([]string, len(p.Records))
	failed := 0
	for i, r := range p.Records {
		vr, err := checkReceipt(verifier, &r.Record, p.ConsentID)
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
			r.Language, choiceList(r.Choices.Categories), choiceList(r.Choices.Partners), verdicts[i])
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

// choiceList writes choices as "advertising=no technical=yes", in name order.
func choiceList(choices map[string]bool) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(choices)) {
		answer := "no"
		if choices[name] {
			answer = "yes"
		}
		parts = append(parts, name+"="+answer)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// statsDocument is the answer of GET /v1/dpo/stats.
type statsDocument struct {
	Days   []siteStats `json:"days"`
	Totals []siteStats `json:"totals"`
}

// siteStats are a site's decisions on a day, or over the days asked for.
type siteStats struct {
	Site       string             `json:"site"`
	Day        string             `json:"day"`
	Total      int                `json:"total"`
	Counts     map[string]int     `json:"counts"`
	Shares     map[string]float64 `json:"shares"`
	Categories map[string]optIn   `json:"categories"`
	Partners   map[string]optIn   `json:"partners"`
}

// optIn is how many decisions granted and denied a category or partner.
type optIn struct {
	Granted   int     `json:"granted"`
	Denied    int     `json:"denied"`
	OptInRate float64 `json:"opt_in_rate"`
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
	doc, err := c.getJSON(ctx, "v1/dpo/stats", query())
	if err != nil {
		return err
	}
	if *asJSON {
		return writeIndented(stdout, doc)
	}
	var s statsDocument
	if err := json.Unmarshal(doc, &s); err != nil {
		return fmt.Errorf("consentd sent unreadable statistics: %w", err)
	}
	if len(s.Days) == 0 {
		fmt.Fprintln(stdout, "no decisions recorded for this selection")
		return nil
	}
	// The columns are the actions consentd counts, so that a new action shows up
	// without a change here.
	actions := map[string]bool{}
	for _, d := range s.Days {
		for a := range d.Counts {
			actions[a] = true
		}
	}
	columns := slices.Sorted(maps.Keys(actions))
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "SITE\tDAY\tTOTAL\t%s\n", strings.ToUpper(strings.Join(columns, "\t")))
	for _, d := range s.Days {
		fmt.Fprintf(w, "%s\t%s\t%d", d.Site, d.Day, d.Total)
		for _, a := range columns {
			fmt.Fprintf(w, "\t%d (%.0f%%)", d.Counts[a], 100*d.Shares[a])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nSITE\tOPT-IN\tID\tGRANTED\tDENIED\tRATE\n")
	for _, t := range s.Totals {
		for _, kind := range []struct {
			name    string
			tallies map[string]optIn
		}{{"category", t.Categories}, {"partner", t.Partners}} {
			for _, id := range slices.Sorted(maps.Keys(kind.tallies)) {
				tl := kind.tallies[id]
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%.1f%%\n", t.Site, kind.name, id, tl.Granted, tl.Denied, 100*tl.OptInRate)
			}
		}
	}
	return w.Flush()
}
