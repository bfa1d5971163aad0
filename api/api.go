// Package api holds the documents of consentd's HTTP API that are more than a
// domain type: the server writes them, the client reads them, and neither has a
// copy of its own. openapi.yaml describes the same shapes for other languages.
package api

import (
	"slices"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
)

// Error is the one shape of every error answer.
type Error struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong: Code is one of consent's error codes, Message
// is for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Proof is everything that proves one visitor's decisions (GET
// /v1/dpo/consents/{consent_id}): the records, whether each receipt verifies, and
// the snapshots of what the visitor was shown.
type Proof struct {
	ConsentID string              `json:"consent_id"`
	Records   []*ProofRecord      `json:"records"`
	Snapshots []*consent.Snapshot `json:"snapshots"`
}

// Sites returns the sites of the proof's records, in the order they first appear.
func (p *Proof) Sites() []string {
	var sites []string
	for _, r := range p.Records {
		if !slices.Contains(sites, r.Site) {
			sites = append(sites, r.Site)
		}
	}
	return sites
}

// ProofRecord is a record with the server's verdict on its receipt. A client that
// trusts no server checks the receipt again with the published keys.
type ProofRecord struct {
	*consent.Record
	ReceiptValid bool   `json:"receipt_valid"`
	ReceiptError string `json:"receipt_error,omitempty"`
}

// Erasure is the outcome of an erasure request (DELETE
// /v1/dpo/consents/{consent_id}): of the consent's Records, how many were Erased
// now (the others were erased before).
type Erasure struct {
	ConsentID string `json:"consent_id"`
	Erased    int    `json:"erased"`
	Records   int    `json:"records"`
}

// AuditPage is a page of the audit log (GET /v1/dpo/audit); Next is the cursor of
// the next page, "" after the last.
type AuditPage struct {
	Entries []*consent.AuditEntry `json:"entries"`
	Next    string                `json:"next"`
}

// RecordPage is a page of records (GET /v1/dpo/records); Next is the cursor of the
// next page, "" after the last.
type RecordPage struct {
	Records []*consent.Record `json:"records"`
	Next    string            `json:"next"`
}

// Consistency is the proof that the log's tree of size Second extends the one of
// size First (GET /v1/log/consistency): the hashes, base64, from which
// golang.org/x/mod/sumdb/tlog.CheckTree recomputes both roots.
type Consistency struct {
	First  int64    `json:"first"`
	Second int64    `json:"second"`
	Proof  []string `json:"proof"`
}

// ProofFile is a consent's proof as one file that a regulator checks offline: the
// Proof, the keys that sign the log, and the log's newest checkpoint when the file
// was made, which the receipts' checkpoints must be consistent with.
type ProofFile struct {
	*Proof
	PublicKeys  *proof.PublicKeys `json:"public_keys"`
	Checkpoint  string            `json:"checkpoint"`
	HowToVerify string            `json:"how_to_verify"`
}

// HowToVerify is what a ProofFile says about checking it.
const HowToVerify = "Each record's receipt proves that the record, as it is here, is a leaf of the transparency log under a checkpoint signed by one of public_keys. " +
	"Check them offline with: consentd verify-receipt FILE --public-keys FILE. " +
	"Compare public_keys with those the controller publishes at /v1/keys (or has given you before): a key you do not know proves nothing. " +
	"Erased records keep the digest of what was erased in their leaf: their receipts still verify."
