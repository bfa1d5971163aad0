package proof_test

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func MustReceipt(tb testing.TB) *consent.Receipt {
	tb.Helper()
	at := time.Date(2026, 11, 27, 13, 18, 5, 123000000, time.UTC)
	return &consent.Receipt{
		Version: consent.ReceiptVersion, RecordID: "019ac5e2-7c3a-7d41-9f0b-3c2d8e1a4b5c", ConsentID: "3f0c9a52-1b7e-4c43-9a49-6f0e2f7d4b11",
		Timestamp:  at,
		Controller: consent.Controller{Name: "MIXVOIP S.A.", Address: "70, rue des Prés, L-7333 Steinsel, Luxembourg", Email: "dpo@mixvoip.com", Jurisdiction: "LU"},
		Site:       "mixvoip.com", PolicyURL: "https://www.mixvoip.com/privacy-policy", PolicyVersion: "2021-09-13", Fingerprint: "421ff2071a8b7fd2",
		Action: consent.ActionCustom, CollectionMethod: "website banner, preferences, https://www.mixvoip.com/<pricing>&more\u2028",
		Purposes: map[string]bool{"technical": true, "advertising": true},
		Partners: map[string]bool{"meta-pixel": false, "google-ads": true},
		Expires:  at.Add(182 * 24 * time.Hour), WithdrawalMethod: `the "Cookie settings" link`,
	}
}

// TestCanonical pins the signed bytes: RFC 8785 form (sorted members, no white space,
// no HTML escaping, U+2028 as is). A change here breaks every receipt already issued.
func TestCanonical(t *testing.T) {
	r := MustReceipt(t)
	r.KeyID = "ed25519-0123456789abcdef"
	r.Signature = "ignored"
	got, err := proof.Canonical(r)
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/receipt.canonical.json"
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("canonical form changed:\n got %s\nwant %s", got, want)
	}
}

// TestReceiptVerifiesWithPublishedKeyOnly signs a receipt, sends it through JSON as a
// visitor would download it, and verifies it with nothing but the published keys.
func TestReceiptVerifiesWithPublishedKeyOnly(t *testing.T) {
	k, err := proof.NewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	published := proof.NewKeyring(k).Public()
	r := MustReceipt(t)
	if err := proof.Sign(r, k); err != nil {
		t.Fatal(err)
	}
	downloaded := MustRoundTrip(t, r)
	if err := proof.Verify(downloaded, published); err != nil {
		t.Fatalf("a signed receipt does not verify: %v", err)
	}

	tampered := []struct {
		name string
		edit func(*consent.Receipt)
	}{
		{"refusal turned into a grant", func(r *consent.Receipt) { r.Partners["meta-pixel"] = true }},
		{"action", func(r *consent.Receipt) { r.Action = consent.ActionAcceptAll }},
		{"time", func(r *consent.Receipt) { r.Timestamp = r.Timestamp.Add(time.Second) }},
		{"consent id", func(r *consent.Receipt) { r.ConsentID = "00000000-0000-4000-8000-000000000000" }},
		{"controller", func(r *consent.Receipt) { r.Controller.Jurisdiction = "DE" }},
		{"other key id", func(r *consent.Receipt) { r.KeyID = "ed25519-0000000000000000" }},
		{"signature", func(r *consent.Receipt) { r.Signature = r.Signature[:10] + "AAAA" + r.Signature[14:] }},
	}
	for _, tt := range tampered {
		t.Run(tt.name, func(t *testing.T) {
			c := MustRoundTrip(t, r)
			tt.edit(c)
			if err := proof.Verify(c, published); !errors.Is(err, proof.ErrBadSignature) {
				t.Errorf("tampered receipt: err = %v, want ErrBadSignature", err)
			}
		})
	}
}

func MustRoundTrip(tb testing.TB, r *consent.Receipt) *consent.Receipt {
	tb.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		tb.Fatal(err)
	}
	out := new(consent.Receipt)
	if err := json.Unmarshal(data, out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestCanonicalCoversEveryMember: a member added to consent.Receipt must be signed
// too; the canonical form has to carry every member but the signature.
func TestCanonicalCoversEveryMember(t *testing.T) {
	r := MustReceipt(t)
	full, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := proof.Canonical(r)
	if err != nil {
		t.Fatal(err)
	}
	var want, got map[string]any
	json.Unmarshal(full, &want)
	json.Unmarshal(canonical, &got)
	delete(want, "signature")
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("member %q of consent.Receipt is not signed", k)
		}
	}
	if len(got) != len(want) {
		t.Errorf("canonical form has %d members, the receipt %d", len(got), len(want))
	}
}
