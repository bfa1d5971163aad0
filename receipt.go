package consent

import "time"

// ReceiptVersion names the receipt format; docs/receipts.md describes it.
const ReceiptVersion = "consentd-receipt/1"

// Receipt is what a visitor and a regulator can keep of one record: the decision,
// who asked for it under which policy, and how to take it back, signed by the
// controller's key. Its fields follow the Kantara consent receipt and ISO/IEC TS
// 27560.
type Receipt struct {
	Version          string          `json:"version"`
	RecordID         string          `json:"record_id"`
	ConsentID        string          `json:"consent_id"`
	Timestamp        time.Time       `json:"timestamp"`
	Controller       Controller      `json:"controller"` // with the jurisdiction
	Site             string          `json:"site"`
	PolicyURL        string          `json:"policy_url"`
	PolicyVersion    string          `json:"policy_version"`
	Fingerprint      string          `json:"fingerprint"`
	Action           Action          `json:"action"`
	CollectionMethod string          `json:"collection_method"`
	Purposes         map[string]bool `json:"purposes"`
	Partners         map[string]bool `json:"partners"`
	Expires          time.Time       `json:"expires"`
	WithdrawalMethod string          `json:"withdrawal_method"`
	KeyID            string          `json:"kid"`
	Signature        string          `json:"signature,omitempty"` // base64url ed25519 over the canonical form
}

// NewReceipt returns the unsigned receipt of r, a record of site s.
func NewReceipt(s *Site, r *Record) *Receipt {
	return &Receipt{
		Version:       ReceiptVersion,
		RecordID:      r.ID,
		ConsentID:     r.ConsentID,
		Timestamp:     r.RecordedAt,
		Controller:    s.Controller,
		Site:          s.Key,
		PolicyURL:     s.Policy.URL,
		PolicyVersion: r.PolicyVersion,
		Fingerprint:   r.Fingerprint,
		Action:        r.Action,
		// No page URL: a receipt holds nothing an erasure would have to remove, so
		// its signature outlives one.
		CollectionMethod: "website banner, " + string(r.Surface),
		Purposes:         r.Choices.Categories,
		Partners:         r.Choices.Partners,
		Expires:          r.ExpiresAt,
		WithdrawalMethod: `the "Cookie settings" link or button on the site, at any time, with immediate effect`,
	}
}
