package consent

// ReceiptVersion names the receipt format; docs/receipts.md describes it and how to
// verify one.
const ReceiptVersion = "consentd-receipt/2"

// Receipt is what a visitor and a regulator can keep of one record, and check with
// the log's published key alone: the exact bytes the record's leaf covers, the leaf,
// the proof that the leaf is in the log, and what the visitor was shown.
type Receipt struct {
	Version string `json:"version"`
	// Decision is the record's decision part (consent id, choices, action, policy
	// version, ...), RFC 8785 canonical JSON, byte for byte as the leaf's digest
	// covers it.
	Decision string `json:"decision"`
	// Leaf is the record's leaf in the log (base64): its id, site, time, and the
	// digests of its parts and of the snapshot.
	Leaf []byte `json:"leaf"`
	// Proof is a C2SP tlog-proof: the leaf's index, its inclusion proof, and the
	// signed checkpoint of the tree it leads to.
	Proof string `json:"proof"`
	// Snapshot is the stored snapshot of what the visitor was shown (the
	// controller, policy, texts, categories and partners), byte for byte as the
	// leaf's digest covers it; empty if none was stored.
	Snapshot string `json:"snapshot,omitempty"`
}
