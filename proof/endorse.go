package proof

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Endorsement is one key's signature over the public half of another: several
// instances of consentd publish their keys to each other this way (in their shared
// database), and each trusts a key that a key it trusts endorsed, and no other. A
// key written there by anyone without a private key that is trusted already is
// never learned, so that the database alone cannot forge proofs.
type Endorsement struct {
	Key       string // the id of the key endorsed, as Statement names it
	By        string // the id of the key that signed
	Statement []byte // see endorsementStatement
	Signature []byte
}

const endorsementHeader = "consentd key endorsement v1"

// endorsementStatement is what an endorsement of k signs: its id, public key and
// time of creation, each on a line of its own.
func endorsementStatement(k publicKey) []byte {
	return fmt.Appendf(nil, "%s\n%s\n%s\n%s\n", endorsementHeader, k.id, base64.RawURLEncoding.EncodeToString(k.key), k.created.UTC().Format(time.RFC3339Nano))
}

// parseStatement returns the key a statement endorses, checked against its id.
func parseStatement(statement []byte) (publicKey, error) {
	lines := strings.Split(string(statement), "\n")
	if len(lines) != 5 || lines[0] != endorsementHeader || lines[4] != "" {
		return publicKey{}, fmt.Errorf("not a %q", endorsementHeader)
	}
	raw, err := base64.RawURLEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != ed25519.PublicKeySize || KeyID(raw) != lines[1] {
		return publicKey{}, fmt.Errorf("key %s is malformed", lines[1])
	}
	created, err := time.Parse(time.RFC3339Nano, lines[3])
	if err != nil {
		return publicKey{}, fmt.Errorf("key %s has no valid time of creation", lines[1])
	}
	return publicKey{id: lines[1], key: raw, created: created}, nil
}

// Endorsements returns the endorsements of kr's keys by each other: the signing
// key endorses every other key, staged ones included, and each of them endorses the
// signing key, so that an instance holding any one of them learns all the others.
// They are the same each time, as ed25519 signs deterministically.
func (kr *Keyring) Endorsements() []Endorsement {
	signer := kr.Signer()
	var out []Endorsement
	for _, k := range *kr.keys.Load() {
		if k.ID != signer.ID {
			out = append(out, endorse(k, signer), endorse(signer, k))
		}
	}
	return out
}

// endorse returns the endorsement of k by the key by.
func endorse(k, by *Key) Endorsement {
	statement := endorsementStatement(k.verifying())
	return Endorsement{Key: k.ID, By: by.ID, Statement: statement, Signature: ed25519.Sign(by.Private, statement)}
}

// Learn adds to the keys kr verifies with every key that endorsements show a
// trusted key endorsed: one kr holds or learned before, or, in turn, one learned
// that way. It returns the ids of the keys it learned now, and of those endorsed
// only by keys it does not trust, or whose endorsement does not verify: a key made
// without the others, or rows written by someone without any private key.
func (kr *Keyring) Learn(endorsements []Endorsement) (learned, refused []string) {
	kr.learning.Lock()
	defer kr.learning.Unlock()
	trusted := make(map[string]ed25519.PublicKey)
	for _, k := range kr.verifying() {
		trusted[k.id] = k.key
	}
	var added []publicKey
	for grew := true; grew; {
		grew = false
		for _, e := range endorsements {
			by, ok := trusted[e.By]
			if _, known := trusted[e.Key]; known || !ok || !ed25519.Verify(by, e.Statement, e.Signature) {
				continue
			}
			k, err := parseStatement(e.Statement)
			if err != nil || k.id != e.Key {
				continue
			}
			trusted[k.id] = k.key
			added = append(added, k)
			learned = append(learned, k.id)
			grew = true
		}
	}
	if len(added) > 0 {
		var before []publicKey
		if l := kr.learned.Load(); l != nil {
			before = *l
		}
		all := append(slices.Clone(before), added...)
		kr.learned.Store(&all)
	}
	for _, e := range endorsements {
		if _, ok := trusted[e.Key]; !ok && !slices.Contains(refused, e.Key) {
			refused = append(refused, e.Key)
		}
	}
	return learned, refused
}
