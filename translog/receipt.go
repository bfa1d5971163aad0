package translog

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	consent "github.com/mixvoip/consentd"
)

// NewReceipt returns the receipt of the record whose leaf has the bytes leaf, proved
// by p: its decision part, its leaf, the proof, and the stored snapshot it names (""
// if none).
func NewReceipt(p *Proof, decision, leaf []byte, snapshot string) (*consent.Receipt, error) {
	text, err := p.MarshalText()
	if err != nil {
		return nil, err
	}
	return &consent.Receipt{
		Version:  consent.ReceiptVersion,
		Decision: string(decision),
		Leaf:     leaf,
		Proof:    string(text),
		Snapshot: snapshot,
	}, nil
}

// Verified is what a receipt proves once it verifies.
type Verified struct {
	Record     *consent.Record   // its decision and leaf; no identifying part
	Snapshot   *consent.Snapshot // what the visitor was shown; nil if the receipt lacks it
	Index      int64
	Checkpoint *Checkpoint
	Proof      *Proof
}

// ErrBadReceipt is wrapped by VerifyReceipt's errors for receipts that do not hold.
var ErrBadReceipt = errors.New("the receipt does not verify")

// VerifyReceipt checks a receipt with the log's verifier alone, as docs/receipts.md
// describes: the digests in its leaf cover its decision and snapshot bytes, the
// snapshot is the one the decision names, and the proof puts the leaf in a tree
// whose checkpoint a key of the log signed. A receipt without its snapshot (the
// answer to POST /v1/consents) proves the decision, not what was shown.
func (v *Verifier) VerifyReceipt(rc *consent.Receipt) (*Verified, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("translog: %s: %w", fmt.Sprintf(format, args...), ErrBadReceipt)
	}
	if rc.Version != consent.ReceiptVersion {
		return nil, bad("version %q, want %q", rc.Version, consent.ReceiptVersion)
	}
	var leaf Leaf
	if err := leaf.UnmarshalBinary(rc.Leaf); err != nil {
		return nil, bad("its leaf: %v", err)
	}
	if sha256.Sum256([]byte(rc.Decision)) != leaf.Decision {
		return nil, bad("its decision is not the one its leaf covers")
	}
	r := &consent.Record{ID: leaf.RecordID.String(), Site: leaf.Site, RecordedAt: leaf.RecordedAt}
	if err := ParseDecisionPart([]byte(rc.Decision), r); err != nil {
		return nil, bad("its decision: %v", err)
	}
	// Only the one form the log writes: JSON that parsers could read two ways (a
	// member twice, or in another case, or unknown) would prove what a reader wants.
	if again, err := DecisionPart(r); err != nil || string(again) != rc.Decision {
		return nil, bad("its decision is not in the canonical form of format %d", LeafVersion)
	}
	var snap *consent.Snapshot
	if rc.Snapshot != "" {
		if sha256.Sum256([]byte(rc.Snapshot)) != leaf.Snapshot {
			return nil, bad("its snapshot is not the one its leaf covers")
		}
		snap = new(consent.Snapshot)
		if err := json.Unmarshal([]byte(rc.Snapshot), snap); err != nil {
			return nil, bad("its snapshot: %v", err)
		}
		if snap.Site != r.Site || snap.Fingerprint != r.Fingerprint {
			return nil, bad("its snapshot is of %s %s, its decision of %s %s", snap.Site, snap.Fingerprint, r.Site, r.Fingerprint)
		}
	}
	var p Proof
	if err := p.UnmarshalText([]byte(rc.Proof)); err != nil {
		return nil, bad("its proof: %v", err)
	}
	cp, err := v.VerifyInclusion(&p, rc.Leaf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrBadReceipt)
	}
	r.LogIndex = p.Index
	return &Verified{Record: r, Snapshot: snap, Index: p.Index, Checkpoint: cp, Proof: &p}, nil
}
