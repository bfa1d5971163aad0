package proof_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/mixvoip/consentd/proof"
)

// TestLearnEndorsedKeys: an instance holding only the newest key learns the older
// ones from the endorsements another instance published, in a chain if need be, then
// publishes and verifies exactly as that instance does, and signs with its own key
// only; keys whose endorsement it cannot trust are refused, whatever else the rows
// claim.
func TestLearnEndorsedKeys(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
	oldest, middle, newest := mustKey(t, t0), mustKey(t, t0.Add(time.Hour)), mustKey(t, t0.Add(2*time.Hour))
	before := proof.NewKeyring(oldest, middle) // an instance before the last rotation
	after := proof.NewKeyring(middle, newest)  // one after it, without the oldest key
	published := append(before.Endorsements(), after.Endorsements()...)

	fresh := proof.NewKeyring(newest) // a new instance, given the signing key only
	learned, refused := fresh.Learn(published)
	slices.Sort(learned)
	if want := sorted(oldest.ID, middle.ID); !slices.Equal(learned, want) || len(refused) != 0 {
		t.Errorf("learned %v and refused %v, want %v and none", learned, refused, want)
	}
	everyKey := proof.NewKeyring(oldest, middle, newest)
	if got, want := mustPublished(t, fresh), mustPublished(t, everyKey); !bytes.Equal(got, want) {
		t.Errorf("GET /v1/keys of an instance that learned its keys:\n%s\nwant, as one that holds them all:\n%s", got, want)
	}
	mustVerifyWith(t, oldest, fresh)
	if fresh.Signer().ID != newest.ID || fresh.Holds(oldest.ID) || !fresh.HasKey(oldest.ID) {
		t.Errorf("after learning: signer %s, holds the oldest key %v, verifies with it %v; want %s, false, true", fresh.Signer().ID, fresh.Holds(oldest.ID), fresh.HasKey(oldest.ID), newest.ID)
	}
	if again, _ := fresh.Learn(published); len(again) != 0 {
		t.Errorf("learning the same endorsements again learned %v", again)
	}
	fresh.Replace(proof.NewKeyring(newest))
	if !fresh.HasKey(oldest.ID) {
		t.Error("a key directory reloaded made the keyring forget a key it learned")
	}

	intruder := mustKey(t, t0.Add(3*time.Hour))
	self := proof.NewKeyring(intruder).Endorsements() // none: one key endorses nothing
	withIntruder := proof.NewKeyring(intruder, mustKey(t, t0.Add(4*time.Hour))).Endorsements()
	stolenSignature := after.Endorsements()[0]
	stolenSignature.Key, stolenSignature.Statement = withIntruder[0].Key, withIntruder[0].Statement
	shifted := after.Endorsements()[0]
	shifted.Statement = bytes.Replace(shifted.Statement, []byte("T01:"), []byte("T09:"), 1)
	cases := map[string][]proof.Endorsement{
		"endorsed by keys nobody trusts":                   append(self, withIntruder...),
		"a trusted key's signature over another statement": {stolenSignature},
		"a statement changed after it was signed":          {shifted},
	}
	for name, rows := range cases {
		t.Run(name, func(t *testing.T) {
			kr := proof.NewKeyring(newest)
			learned, refused := kr.Learn(rows)
			if len(learned) != 0 || len(refused) == 0 {
				t.Errorf("learned %v, refused %v; want nothing learned, the key refused", learned, refused)
			}
			if len(kr.Public()) != 1 {
				t.Errorf("GET /v1/keys publishes %d keys, want the one held", len(kr.Public()))
			}
		})
	}
}

func mustKey(tb testing.TB, created time.Time) *proof.Key {
	tb.Helper()
	k, err := proof.NewKey(created)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustPublished(tb testing.TB, kr *proof.Keyring) []byte {
	tb.Helper()
	doc, err := kr.Published(testOrigin)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
