package proof

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	consent "github.com/mixvoip/consentd"
)

// Verifier checks checkpoints with published keys alone: what an auditor holds who
// has the document GET /v1/keys served and no private key.
type Verifier struct {
	keys map[string]ed25519.PublicKey // by key id
}

var _ consent.CheckpointVerifier = (*Verifier)(nil)

// NewVerifier returns a Verifier of keys. It refuses a malformed key, or one whose id
// does not follow from it, rather than let it fail every checkpoint it signed.
func NewVerifier(keys []PublicKey) (*Verifier, error) {
	v := &Verifier{keys: make(map[string]ed25519.PublicKey, len(keys))}
	for _, k := range keys {
		pub, err := k.decode()
		if err != nil {
			return nil, err
		}
		v.keys[k.ID] = pub
	}
	return v, nil
}

// ReadPublicKeys reads the keys of a document as GET /v1/keys serves it,
// {"keys": [...]}; one without keys is an error, as it would verify nothing.
func ReadPublicKeys(r io.Reader) ([]PublicKey, error) {
	var doc struct {
		Keys []PublicKey `json:"keys"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("proof: public keys: %w", err)
	}
	if len(doc.Keys) == 0 {
		return nil, errors.New(`proof: public keys: none found, want {"keys": [...]} as GET /v1/keys serves it`)
	}
	return doc.Keys, nil
}

// VerifyCheckpoint reports whether one of the keys signed c.
func (v *Verifier) VerifyCheckpoint(c *consent.Checkpoint) bool {
	return checkpointSigned(c, v.keys[c.KeyID])
}

// HasKey reports whether v holds the key with id kid.
func (v *Verifier) HasKey(kid string) bool { return v.keys[kid] != nil }

// decode returns the ed25519 key k publishes, checked against its id.
func (k PublicKey) decode() (ed25519.PublicKey, error) {
	raw, err := base64.RawURLEncoding.DecodeString(k.Key)
	if err != nil || len(raw) != ed25519.PublicKeySize || KeyID(raw) != k.ID {
		return nil, fmt.Errorf("proof: published key %s is malformed", k.ID)
	}
	return raw, nil
}

// checkpointSigned reports whether pub, nil for an unknown key, signed c.
func checkpointSigned(c *consent.Checkpoint, pub ed25519.PublicKey) bool {
	sig, err := base64.RawURLEncoding.DecodeString(c.Signature)
	return pub != nil && err == nil && ed25519.Verify(pub, c.Message(), sig)
}
