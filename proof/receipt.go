package proof

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	consent "github.com/mixvoip/consentd"
)

// Canonical returns the bytes a receipt's signature covers: the receipt without its
// "signature" member, as JSON canonicalized by RFC 8785 (members sorted by name, no
// white space, strings escaped only where JSON requires). Any JCS library rebuilds
// them from a received receipt, so that verifying needs nothing from consentd but
// the public key.
func Canonical(r *consent.Receipt) ([]byte, error) {
	c := canonicalReceipt{
		Action: r.Action, CollectionMethod: r.CollectionMethod, ConsentID: r.ConsentID,
		Controller: canonicalController{Address: r.Controller.Address, Email: r.Controller.Email,
			Jurisdiction: r.Controller.Jurisdiction, Name: r.Controller.Name},
		Expires: r.Expires, Fingerprint: r.Fingerprint, KeyID: r.KeyID, Partners: r.Partners,
		PolicyURL: r.PolicyURL, PolicyVersion: r.PolicyVersion, Purposes: r.Purposes, RecordID: r.RecordID,
		Site: r.Site, Timestamp: r.Timestamp, Version: r.Version, WithdrawalMethod: r.WithdrawalMethod,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("proof: canonical receipt: %w", err)
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	// encoding/json escapes U+2028 and U+2029 even then; RFC 8785 does not.
	out = bytes.ReplaceAll(out, []byte(`\u2028`), []byte("\u2028"))
	return bytes.ReplaceAll(out, []byte(`\u2029`), []byte("\u2029")), nil
}

// canonicalReceipt is consent.Receipt without its signature, with the members in
// the order RFC 8785 sorts them: encoding/json writes struct fields in declaration
// order and map keys sorted, so one Marshal gives the canonical form. Members must
// stay sorted by their JSON names; TestCanonical pins the bytes.
type canonicalReceipt struct {
	Action           consent.Action      `json:"action"`
	CollectionMethod string              `json:"collection_method"`
	ConsentID        string              `json:"consent_id"`
	Controller       canonicalController `json:"controller"`
	Expires          time.Time           `json:"expires"`
	Fingerprint      string              `json:"fingerprint"`
	KeyID            string              `json:"kid"`
	Partners         map[string]bool     `json:"partners"`
	PolicyURL        string              `json:"policy_url"`
	PolicyVersion    string              `json:"policy_version"`
	Purposes         map[string]bool     `json:"purposes"`
	RecordID         string              `json:"record_id"`
	Site             string              `json:"site"`
	Timestamp        time.Time           `json:"timestamp"`
	Version          string              `json:"version"`
	WithdrawalMethod string              `json:"withdrawal_method"`
}

type canonicalController struct {
	Address      string `json:"address"`
	Email        string `json:"email"`
	Jurisdiction string `json:"jurisdiction"`
	Name         string `json:"name"`
}

// Sign signs r with k: it sets r.KeyID and r.Signature.
func Sign(r *consent.Receipt, k *Key) error {
	r.KeyID = k.ID
	msg, err := Canonical(r)
	if err != nil {
		return err
	}
	r.Signature = base64.RawURLEncoding.EncodeToString(ed25519.Sign(k.Private, msg))
	return nil
}

// ErrBadSignature is returned by Verify for a receipt whose signature does not hold.
var ErrBadSignature = errors.New("proof: the receipt's signature does not verify")

// Verify checks r's signature against the published keys.
func Verify(r *consent.Receipt, keys []PublicKey) error {
	var pub ed25519.PublicKey
	for _, k := range keys {
		if k.ID == r.KeyID {
			var err error
			if pub, err = k.decode(); err != nil {
				return err
			}
		}
	}
	if pub == nil {
		return fmt.Errorf("proof: no published key %q: %w", r.KeyID, ErrBadSignature)
	}
	sig, err := base64.RawURLEncoding.DecodeString(r.Signature)
	if err != nil {
		return ErrBadSignature
	}
	msg, err := Canonical(r)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, msg, sig) {
		return ErrBadSignature
	}
	return nil
}
