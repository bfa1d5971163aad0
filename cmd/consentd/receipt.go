package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/client"
	"github.com/mixvoip/consentd/translog"
)

// errReceipts is returned when a receipt does not verify, or is not proved to be in
// the newer tree asked for; the report says which.
var errReceipts = errors.New("receipts do not verify")

// verifyReceipt is `consentd verify-receipt FILE`: it checks the receipts in FILE (a
// receipt, a record with its receipt, or a visitor's download of GET
// /v1/consents/{consent_id}) with nothing but the keys consentd publishes: that
// each decision is the one its leaf covers, in the log under a checkpoint a key of
// the log signed. With --against, it also proves each record still in a newer tree
// of the log: a log that dropped or rewrote it could not give that proof.
func verifyReceipt(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd verify-receipt FILE", flag.ContinueOnError)
	fs.SetOutput(stderr)
	publicKeys := fs.String("public-keys", "", "the public keys as GET /v1/keys serves them")
	base := fs.String("url", "", "instead of --public-keys, or besides it: the consentd whose keys (GET /v1/keys) and consistency proofs (GET /v1/log/consistency) to fetch")
	against := fs.String("against", "", "a newer checkpoint of the log, a file as GET /v1/log/checkpoint serves it or the address of consentd, in whose tree each record must still be")
	path, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if path == "" {
		fmt.Fprintln(stderr, "consentd verify-receipt: which file? A receipt, a record with its receipt, or a visitor's download (consent-ID.json)")
		fs.Usage()
		return errUsage
	}
	if *publicKeys == "" && *base == "" {
		return errors.New("consentd verify-receipt: give the keys consentd publishes: --public-keys keys.json (fetched from GET /v1/keys), or --url of consentd to fetch them")
	}
	var c *client.Client // where keys and proofs come from, if anywhere
	if *base != "" {
		if c, err = newClient("--url", *base, ""); err != nil {
			return err
		}
	}
	records, consentID, err := readReceipts(path)
	if err != nil {
		return err
	}
	var verifier *translog.Verifier
	if *publicKeys != "" {
		doc, err := readPublicKeysFile(*publicKeys)
		if err != nil {
			return err
		}
		if verifier, err = doc.Verifier(); err != nil {
			return fmt.Errorf("%s: %w", *publicKeys, err)
		}
	} else if _, verifier, err = c.Keys(ctx); err != nil {
		return err
	}

	var problems []string
	verified := make([]*translog.Verified, len(records))
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RECORDED\tRECORD\tSITE\tACTION\tCHOICES\tLEAF\tTREE\tRECEIPT")
	for i, r := range records {
		vr, err := checkReceipt(verifier, r, consentID)
		if err != nil {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t-\t-\t-\tNOT VERIFIED\n", r.RecordedAt.Format(time.RFC3339), orDash(r.ID), orDash(r.Site), orDash(string(r.Action)))
			problems = append(problems, fmt.Sprintf("record %s: %v", orDash(r.ID), err))
			continue
		}
		verified[i] = vr
		p := vr.Record
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\tverified\n", p.RecordedAt.Format(time.RFC3339), p.ID, p.Site, p.Action,
			consent.AnswerList(p.Choices.Categories)+" "+consent.AnswerList(p.Choices.Partners), vr.Index, vr.Checkpoint.Size)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if *against != "" {
		problems = append(problems, proveStillIn(ctx, stdout, verifier, verified, *against, c)...)
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stdout, "%s: %s, NOT all proved: %s\n", path, count(len(records), "record"), count(len(problems), "problem"))
		return errReceipts
	}
	what := "every receipt verifies"
	if *against != "" {
		what += ", and every record is still in the newer tree"
	}
	if consentID != "" {
		fmt.Fprintf(stdout, "%s: consent %s, %s, %s in the log %s\n", path, consentID, count(len(records), "record"), what, verifier.Origin())
	} else {
		fmt.Fprintf(stdout, "%s: %s, %s in the log %s\n", path, count(len(records), "record"), what, verifier.Origin())
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readReceipts reads the file at path: one receipt, one record with its receipt,
// or a visitor's records as GET /v1/consents/{consent_id} answers them, with their
// consent id.
func readReceipts(path string) (records []*consent.Record, consentID string, err error) {
	data, err := readFile(path, maxProofFile)
	if err != nil {
		return nil, "", err
	}
	var members map[string]json.RawMessage
	notReceipts := fmt.Errorf("%s: not a receipt, a record with its receipt, or a visitor's records as GET /v1/consents/{consent_id} answers them (the download of the visitor's page)", path)
	if json.Unmarshal(data, &members) != nil {
		return nil, "", notReceipts
	}
	switch {
	case members["records"] != nil:
		var doc struct {
			ConsentID string            `json:"consent_id"`
			Records   []*consent.Record `json:"records"`
		}
		if json.Unmarshal(data, &doc) != nil || len(doc.Records) == 0 || slices.Contains(doc.Records, nil) {
			return nil, "", notReceipts
		}
		return doc.Records, doc.ConsentID, nil
	case members["receipt"] != nil:
		var r consent.Record
		if json.Unmarshal(data, &r) != nil {
			return nil, "", notReceipts
		}
		return []*consent.Record{&r}, "", nil
	case members["proof"] != nil && members["leaf"] != nil:
		var rc consent.Receipt
		if json.Unmarshal(data, &rc) != nil {
			return nil, "", notReceipts
		}
		// A receipt alone: the record is what it proves.
		return []*consent.Record{{Receipt: &rc}}, "", nil
	}
	return nil, "", notReceipts
}

// checkReceipt verifies r's receipt with verifier, and that r says what its receipt
// proves (r is only a receipt if it has no id): the receipt is what is proved, the
// record what a visitor reads. A record of another consent than consentID (if not
// "") is refused too.
func checkReceipt(verifier *translog.Verifier, r *consent.Record, consentID string) (*translog.Verified, error) {
	if r.Receipt == nil {
		return nil, errors.New("no receipt")
	}
	vr, err := verifier.VerifyReceipt(r.Receipt)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "translog: "))
	}
	p := vr.Record
	if consentID != "" && p.ConsentID != consentID {
		return nil, fmt.Errorf("a record of consent %s, not of %s", p.ConsentID, consentID)
	}
	if r.ID == "" {
		return vr, nil
	}
	var differ []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"record id", r.ID == p.ID},
		{"consent id", r.ConsentID == p.ConsentID},
		{"site", r.Site == p.Site},
		{"time", r.RecordedAt.Equal(p.RecordedAt)},
		{"action", r.Action == p.Action},
		{"choices", maps.Equal(r.Choices.Categories, p.Choices.Categories) && maps.Equal(r.Choices.Partners, p.Choices.Partners)},
		{"fingerprint", r.Fingerprint == p.Fingerprint},
		{"policy version", r.PolicyVersion == p.PolicyVersion},
		{"language", r.Language == p.Language},
		{"surface", r.Surface == p.Surface},
		{"GPC signal", r.GPC == p.GPC},
		{"expiry", r.ExpiresAt.Equal(p.ExpiresAt)},
		{"log index", r.LogIndex == p.LogIndex},
	} {
		if !f.same {
			differ = append(differ, f.name)
		}
	}
	switch len(differ) {
	case 0:
	case 1:
		return nil, fmt.Errorf("the record's %s differs from what its receipt proves", differ[0])
	default:
		return nil, fmt.Errorf("the record's %s differ from what its receipt proves", strings.Join(differ, ", "))
	}
	return vr, nil
}

// proveStillIn proves that the trees of the verified receipts (nil for those that
// did not verify) are extended by the newer tree of against, a checkpoint file or
// consentd's address, with consistency proofs from against if it is an address,
// else from c. It prints what it proved and returns the problems, one sentence each.
func proveStillIn(ctx context.Context, stdout io.Writer, verifier *translog.Verifier, verified []*translog.Verified, against string, c *client.Client) []string {
	var newer *consent.Checkpoint
	source := against
	if isURL(against) {
		var err error
		if c, err = newClient("--against", against, ""); err != nil {
			return []string{err.Error()}
		}
		signed, _, err := c.Checkpoint(ctx)
		if errors.Is(err, client.ErrNoCheckpoint) {
			return []string{fmt.Sprintf("--against %s: the log there has no checkpoint yet, so no record is in it", against)}
		}
		if err != nil {
			return []string{fmt.Sprintf("--against: %v", err)}
		}
		if newer, err = verifier.Open(signed); err != nil {
			return []string{fmt.Sprintf("--against: the checkpoint consentd at %s serves does not verify with the published keys: %v", against, err)}
		}
		source = c.URL().JoinPath("v1/log/checkpoint").String()
	} else {
		cp, err := readCheckpointFile(against)
		if err == nil {
			newer, err = verifier.Open(cp.Signed)
		}
		if err != nil {
			return []string{fmt.Sprintf("--against %s: %v", against, err)}
		}
	}
	fmt.Fprintf(stdout, "\nagainst the checkpoint of size %d (%s):\n", newer.Size, source)
	var problems []string
	proved := map[int64]error{} // by the size of a receipt's tree
	for _, vr := range verified {
		if vr == nil {
			continue
		}
		older := vr.Checkpoint
		err, done := proved[older.Size]
		if !done {
			err = extends(ctx, c, older, newer)
			proved[older.Size] = err
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("record %s (leaf %d of the tree of size %d): %v", vr.Record.ID, vr.Index, older.Size, err))
			continue
		}
		fmt.Fprintf(stdout, "  record %s (leaf %d of the tree of size %d): still in the tree of size %d\n", vr.Record.ID, vr.Index, older.Size, newer.Size)
	}
	return problems
}

// extends proves that the tree of newer extends the tree of older, with a
// consistency proof from c if the sizes differ.
func extends(ctx context.Context, c *client.Client, older, newer *consent.Checkpoint) error {
	switch {
	case older.Size > newer.Size:
		return fmt.Errorf("the checkpoint to prove it against is older (size %d): give a newer one", newer.Size)
	case older.Size < newer.Size && c == nil:
		return fmt.Errorf("proving that the tree of size %d extends it needs a consistency proof: give --url of the consentd that keeps the log, or --against its address", newer.Size)
	}
	var p tlog.TreeProof
	if older.Size < newer.Size {
		var err error
		if p, err = c.Consistency(ctx, older.Size, newer.Size); err != nil {
			return err
		}
	}
	if err := translog.VerifyConsistency(p, older, newer); err != nil {
		return fmt.Errorf("NOT in the newer tree: %s", strings.TrimPrefix(err.Error(), "translog: "))
	}
	return nil
}
