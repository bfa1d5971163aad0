package proof

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mixvoip/consentd/translog"
)

// PublicKeys is the document GET /v1/keys serves: the log's name and every key that
// signs for it, oldest first. It is all that verifying a receipt, a checkpoint or a
// store needs, so that an auditor holding no private key can do it.
type PublicKeys struct {
	Origin string      `json:"origin"`
	Keys   []PublicKey `json:"keys"`
}

// ReadPublicKeys reads a document as GET /v1/keys serves it; one without an origin
// or keys is an error, as it would verify nothing.
func ReadPublicKeys(r io.Reader) (*PublicKeys, error) {
	var doc PublicKeys
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("proof: public keys: %w", err)
	}
	if doc.Origin == "" || len(doc.Keys) == 0 {
		return nil, errors.New(`proof: public keys: want {"origin": ..., "keys": [...]} as GET /v1/keys serves it`)
	}
	return &doc, nil
}

// Verifier returns the verifier of the log the document names, with its keys. It
// refuses a malformed key, or one whose id does not follow from it, and a note
// verifier key of another key or log than its entry's.
func (doc *PublicKeys) Verifier() (*translog.Verifier, error) {
	pubs := make([]ed25519.PublicKey, 0, len(doc.Keys))
	for _, k := range doc.Keys {
		pub, err := k.decode()
		if err != nil {
			return nil, err
		}
		if k.LogKey != "" {
			if want, err := translog.VerifierKey(doc.Origin, pub); err != nil || want != k.LogKey {
				return nil, fmt.Errorf("proof: published key %s: its note verifier key is not of this key and log %q", k.ID, doc.Origin)
			}
		}
		pubs = append(pubs, pub)
	}
	return translog.NewVerifier(doc.Origin, pubs...)
}

// decode returns the ed25519 key k publishes, checked against its id.
func (k PublicKey) decode() (ed25519.PublicKey, error) {
	raw, err := base64.RawURLEncoding.DecodeString(k.Key)
	if err != nil || len(raw) != ed25519.PublicKeySize || KeyID(raw) != k.ID {
		return nil, fmt.Errorf("proof: published key %s is malformed", k.ID)
	}
	return raw, nil
}
