package proof_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
)

// TestVerifierChecksCheckpointsWithPublishedKeysOnly signs checkpoints with a keyring,
// publishes its keys as GET /v1/keys does, and verifies with nothing but that
// document.
func TestVerifierChecksCheckpointsWithPublishedKeysOnly(t *testing.T) {
	signer, other := MustEphemeral(t), MustEphemeral(t)
	published, err := json.Marshal(map[string]any{"keys": signer.Public()})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := proof.ReadPublicKeys(strings.NewReader(string(published)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := proof.NewVerifier(keys)
	if err != nil {
		t.Fatal(err)
	}
	signed := func(kr *proof.Keyring) *consent.Checkpoint {
		c := &consent.Checkpoint{Seq: 42, Link: strings.Repeat("ab", 32), At: time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC)}
		kr.SignCheckpoint(c)
		return c
	}
	tests := []struct {
		name string
		c    func() *consent.Checkpoint
		want bool
	}{
		{"signed by a published key", func() *consent.Checkpoint { return signed(signer) }, true},
		{"signed by an unknown key", func() *consent.Checkpoint { return signed(other) }, false},
		{"an unknown key claiming a published id", func() *consent.Checkpoint {
			c := signed(other)
			c.KeyID = signer.Signer().ID
			return c
		}, false},
		{"place moved", func() *consent.Checkpoint { c := signed(signer); c.Seq++; return c }, false},
		{"link changed", func() *consent.Checkpoint { c := signed(signer); c.Link = strings.Repeat("cd", 32); return c }, false},
		{"signature not base64url", func() *consent.Checkpoint { c := signed(signer); c.Signature = "%%%"; return c }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := v.VerifyCheckpoint(tt.c()); got != tt.want {
				t.Errorf("VerifyCheckpoint = %t, want %t", got, tt.want)
			}
			if got := signer.VerifyCheckpoint(tt.c()); got != tt.want {
				t.Errorf("the keyring's own VerifyCheckpoint = %t, want %t", got, tt.want)
			}
		})
	}
	// What lacks a key cannot tell a forged checkpoint from a genuine one.
	if !v.HasKey(signer.Signer().ID) || v.HasKey(other.Signer().ID) {
		t.Errorf("HasKey: published %t, unknown %t; want true, false", v.HasKey(signer.Signer().ID), v.HasKey(other.Signer().ID))
	}
}

func TestReadPublicKeysRefusesWhatVerifiesNothing(t *testing.T) {
	good := MustEphemeral(t).Public()[0]
	tests := []struct {
		name, doc, want string
	}{
		{"not JSON", "-----BEGIN PRIVATE KEY-----", "public keys"},
		{"no keys member", `{"kid": "x"}`, "none found"},
		{"empty list", `{"keys": []}`, "none found"},
		{"key not base64url", `{"keys": [{"kid": "` + good.ID + `", "public_key": "***"}]}`, "malformed"},
		{"id of another key", `{"keys": [{"kid": "ed25519-0000000000000000", "public_key": "` + good.Key + `"}]}`, "malformed"},
		{"key too short", `{"keys": [{"kid": "` + good.ID + `", "public_key": "` + good.Key[:20] + `"}]}`, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := proof.ReadPublicKeys(strings.NewReader(tt.doc))
			if err == nil {
				_, err = proof.NewVerifier(keys)
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
