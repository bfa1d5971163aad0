package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"text/tabwriter"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
)

// errReceipts is returned when a receipt does not verify; the report says which.
var errReceipts = errors.New("receipts do not verify")

// verifyReceipts checks, offline, the records a visitor downloaded from their page
// (the answer of GET /v1/consents/{consent_id}) with the keys consentd publishes at
// GET /v1/keys: each receipt's signature, and that its record says what the signed
// receipt says.
func verifyReceipts(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd verify-receipts FILE", flag.ContinueOnError)
	fs.SetOutput(stderr)
	publicKeys := fs.String("public-keys", "", "the public keys as GET /v1/keys serves them (required)")
	path, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if path == "" || *publicKeys == "" {
		fs.Usage()
		return errUsage
	}
	keys, err := readPublicKeyFile(*publicKeys)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc struct {
		ConsentID string            `json:"consent_id"`
		Records   []*consent.Record `json:"records"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.Records) == 0 {
		return fmt.Errorf("%s: not a visitor's records as GET /v1/consents/{consent_id} answers them (the download of the visitor's page)", path)
	}
	failed := 0
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RECORDED\tRECORD\tSITE\tACTION\tRECEIPT")
	for _, r := range doc.Records {
		err := checkReceipt(r, keys)
		if err == nil && r.ConsentID != doc.ConsentID {
			err = fmt.Errorf("a record of consent %s, not of %s", r.ConsentID, doc.ConsentID)
		}
		verdict := "NOT VERIFIED: "
		if err != nil {
			verdict += err.Error()
			failed++
		} else {
			verdict = "verified (" + r.Receipt.KeyID + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.RecordedAt.Format(time.RFC3339), r.ID, r.Site, r.Action, verdict)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%s: %d of %d receipts do NOT verify\n", path, failed, len(doc.Records))
		return errReceipts
	}
	fmt.Fprintf(stdout, "%s: consent %s, %d records, every receipt verifies\n", path, doc.ConsentID, len(doc.Records))
	return nil
}

// checkReceipt checks r's receipt against keys, and that r says what it says: the
// receipt is what is signed, the record is what the visitor reads.
func checkReceipt(r *consent.Record, keys []proof.PublicKey) error {
	if r.Receipt == nil {
		return errors.New("no receipt")
	}
	if err := proof.Verify(r.Receipt, keys); err != nil {
		return err
	}
	// The receipt rebuilt from the record, under the controller and policy the
	// receipt names (which the record does not repeat), as consentd made it.
	site := &consent.Site{Key: r.Site, Controller: r.Receipt.Controller, Policy: consent.Policy{URL: r.Receipt.PolicyURL}}
	rebuilt := consent.NewReceipt(site, r)
	rebuilt.KeyID, rebuilt.Signature = r.Receipt.KeyID, r.Receipt.Signature
	if !reflect.DeepEqual(rebuilt, r.Receipt) {
		return errors.New("the record does not say what its signed receipt says")
	}
	return nil
}

// readPublicKeyFile reads the keys in the file at path, as GET /v1/keys serves them.
func readPublicKeyFile(path string) ([]proof.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	keys, err := proof.ReadPublicKeys(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}
