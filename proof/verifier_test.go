package proof_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mixvoip/consentd/proof"
)

// TestPublishedKeysVerify signs checkpoints with a keyring, publishes its keys as GET
// /v1/keys does, and verifies with nothing but that document.
func TestPublishedKeysVerify(t *testing.T) {
	signer, other := MustEphemeral(t), MustEphemeral(t)
	doc, err := signer.Published(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	published, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := proof.ReadPublicKeys(strings.NewReader(string(published)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(keys.Keys[0].LogKey, testOrigin+"+") {
		t.Errorf("published note verifier key %q does not name the log", keys.Keys[0].LogKey)
	}
	v, err := keys.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	signed := func(kr *proof.Keyring, origin string) []byte {
		s, err := kr.LogSigner(origin)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := s.SignTree(42, [32]byte{4, 2})
		if err != nil {
			t.Fatal(err)
		}
		return cp.Signed
	}
	tests := []struct {
		name   string
		signed []byte
		want   bool
	}{
		{"signed by a published key", signed(signer, testOrigin), true},
		{"signed by an unknown key", signed(other, testOrigin), false},
		{"of another log", signed(signer, "other.example/log"), false},
		{"size changed", []byte(strings.Replace(string(signed(signer, testOrigin)), "\n42\n", "\n43\n", 1)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Open(tt.signed); (err == nil) != tt.want {
				t.Errorf("Open: %v, want ok %t", err, tt.want)
			}
		})
	}
}

func TestReadPublicKeysRefusesWhatVerifiesNothing(t *testing.T) {
	good := MustEphemeral(t).Public()[0]
	tests := []struct {
		name, doc, want string
	}{
		{"not JSON", "-----BEGIN PRIVATE KEY-----", "public keys"},
		{"no keys member", `{"origin": "a.example/log"}`, "want"},
		{"no origin", `{"keys": [{"kid": "` + good.ID + `", "public_key": "` + good.Key + `"}]}`, "want"},
		{"empty list", `{"origin": "a.example/log", "keys": []}`, "want"},
		{"key not base64url", `{"origin": "a.example/log", "keys": [{"kid": "` + good.ID + `", "public_key": "***"}]}`, "malformed"},
		{"id of another key", `{"origin": "a.example/log", "keys": [{"kid": "ed25519-0000000000000000", "public_key": "` + good.Key + `"}]}`, "malformed"},
		{"key too short", `{"origin": "a.example/log", "keys": [{"kid": "` + good.ID + `", "public_key": "` + good.Key[:20] + `"}]}`, "malformed"},
		{"note key of another log", `{"origin": "a.example/log", "keys": [{"kid": "` + good.ID + `", "public_key": "` + good.Key + `", "note_verifier_key": "b.example/log+00000000+AQ"}]}`, "note verifier key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := proof.ReadPublicKeys(strings.NewReader(tt.doc))
			if err == nil {
				_, err = keys.Verifier()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one that says %q", err, tt.want)
			}
		})
	}
}

func MustEphemeral(tb testing.TB) *proof.Keyring {
	tb.Helper()
	kr, err := proof.NewEphemeralKeyring()
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}
