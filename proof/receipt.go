package proof

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	consent "github.com/mixvoip/consentd"
)

// Canonical returns the bytes a receipt's signature covers: the receipt without its
// "signature" member, as JSON canonicalized by RFC 8785 (members sorted by name, no
// white space, strings escaped only where JSON requires). Any JCS library rebuilds
// them from a received receipt, so that verifying needs nothing from consentd but
// the public key.
func Canonical(r *consent.Receipt) ([]byte, error) {
	unsigned := *r
	unsigned.Signature = ""
	data, err := json.Marshal(&unsigned)
	if err != nil {
		return nil, fmt.Errorf("proof: canonical receipt: %w", err)
	}
	// Through a generic value, encoding/json sorts the members of every object.
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("proof: canonical receipt: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("proof: canonical receipt: %w", err)
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	// encoding/json escapes U+2028 and U+2029 even then; RFC 8785 does not.
	out = bytes.ReplaceAll(out, []byte(`\u2028`), []byte("\u2028"))
	return bytes.ReplaceAll(out, []byte(`\u2029`), []byte("\u2029")), nil
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
			raw, err := base64.RawURLEncoding.DecodeString(k.Key)
			if err != nil || len(raw) != ed25519.PublicKeySize || KeyID(raw) != k.ID {
				return fmt.Errorf("proof: published key %s is malformed", k.ID)
			}
			pub = raw
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
