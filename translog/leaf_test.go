package translog_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

func testRecord() *consent.Record {
	return &consent.Record{
		ID:          "01936b2e-7c4a-7def-8123-456789abcdef",
		ConsentID:   "5f0c8a4e-2b1d-4c3e-9f6a-7b8c9d0e1f2a",
		Site:        "mixvoip.com",
		Action:      consent.ActionCustom,
		Choices:     consent.Choices{Categories: map[string]bool{"necessary": true, "marketing": false}, Partners: map[string]bool{"meta": false}},
		Fingerprint: "fp-1",
		// Characters encoding/json escapes and RFC 8785 does not.
		PolicyVersion: "2026-01 <b>&\u2028",
		Language:      "de",
		Surface:       consent.SurfacePreferences,
		GPC:           true,
		URL:           "https://mixvoip.com/tarife",
		IPPrefix:      "203.0.113.0/24",
		UserAgent:     "Mozilla/5.0 (X11; Linux x86_64)",
		RecordedAt:    time.Date(2026, 12, 2, 10, 0, 0, 123000000, time.UTC),
		ExpiresAt:     time.Date(2027, 6, 2, 10, 0, 0, 123000000, time.UTC),
	}
}

// golden compares got with the file testdata/name, which -update rewrites, and
// returns the file's bytes.
func golden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n%s\nwant:\n%s", name, got, want)
	}
	return want
}

// TestLeafFormat1 pins the bytes of format 1: the decision part, the identifying
// part after its salt, and the leaf. Leaves are in signed trees, so these bytes
// must never change; a new format gets a new version and golden files of its own.
func TestLeafFormat1(t *testing.T) {
	r := testRecord()
	decision, err := translog.DecisionPart(r)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "decision-v1.golden", decision)
	if !strings.Contains(string(decision), "<b>&\u2028") {
		t.Errorf("the decision escapes what RFC 8785 does not: %s", decision)
	}

	identifying, err := translog.IdentifyingPart(r)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "identifying-v1.golden", identifying[translog.SaltSize:])
	again, _ := translog.IdentifyingPart(r)
	if bytes.Equal(identifying[:translog.SaltSize], again[:translog.SaltSize]) {
		t.Error("two identifying parts with the same salt")
	}

	leaf := &translog.Leaf{
		RecordID: uuid.MustParse(r.ID), RecordedAt: r.RecordedAt, Site: r.Site,
		Snapshot: [32]byte{1}, Decision: [32]byte{2}, Identifying: [32]byte{3},
	}
	b, err := leaf.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "leaf-v1.golden", []byte(hex.Dump(b)))

	var back translog.Leaf
	if err := back.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(&back, leaf) {
		t.Errorf("read back as %+v, %v", back, err)
	}

	parsed := new(consent.Record)
	if err := translog.ParseDecisionPart(decision, parsed); err != nil {
		t.Fatal(err)
	}
	if err := translog.ParseIdentifyingPart(identifying, parsed); err != nil {
		t.Fatal(err)
	}
	parsed.ID, parsed.Site, parsed.RecordedAt = r.ID, r.Site, r.RecordedAt
	if !reflect.DeepEqual(parsed, r) {
		t.Errorf("parts read back as %+v, want %+v", parsed, r)
	}
}

func TestLeafRefused(t *testing.T) {
	good, err := (&translog.Leaf{Site: "mixvoip.com"}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"format 2":       append([]byte{2}, good[1:]...),
		"header only":    good[:122],
		"site too long":  append(bytes.Clone(good), 'x'),
		"site too short": good[:len(good)-1],
	} {
		t.Run(name, func(t *testing.T) {
			var l translog.Leaf
			if err := l.UnmarshalBinary(b); err == nil {
				t.Errorf("read %+v", l)
			}
		})
	}
	for _, site := range []string{"", strings.Repeat("x", 256)} {
		if _, err := (&translog.Leaf{Site: site}).MarshalBinary(); err == nil {
			t.Errorf("wrote a leaf with a site of %d bytes", len(site))
		}
	}
}

// TestDecisionRefused: a decision JSON cannot hold, as encoding/json would refuse it,
// is an error, not a record.
func TestDecisionRefused(t *testing.T) {
	tests := map[string]func(r *consent.Record){
		"expiry after the year 9999": func(r *consent.Record) { r.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"expiry in 9999, in UTC 10000": func(r *consent.Record) {
			r.ExpiresAt = time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("UTC-2", -2*60*60))
		},
		"expiry before the year 0": func(r *consent.Record) { r.ExpiresAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) },
		"two choices the same once invalid UTF-8 is replaced": func(r *consent.Record) {
			r.Choices.Categories["\xff"], r.Choices.Categories["\xfe"] = true, false
		},
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			r := testRecord()
			change(r)
			if b, err := translog.DecisionPart(r); err == nil {
				t.Errorf("DecisionPart = %s, want an error", b)
			}
		})
	}
}

// FuzzLeaf: whatever a leaf's bytes, reading them answers without a panic, and what
// reads writes back to the same bytes: a leaf has one encoding.
func FuzzLeaf(f *testing.F) {
	good, _ := (&translog.Leaf{Site: "mixvoip.com", RecordedAt: time.UnixMicro(1)}).MarshalBinary()
	f.Add(good)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l translog.Leaf
		if l.UnmarshalBinary(b) != nil {
			return
		}
		again, err := l.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("%x reads as %+v, writes as %x, %v", b, l, again, err)
		}
	})
}

// FuzzProof: whatever a proof's text, reading it answers without a panic, and what
// reads writes back to the same text.
func FuzzProof(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "proof.golden"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	// A \r inside a hash line, which base64 decoding skips.
	lines := bytes.SplitN(golden, []byte("\n"), 4)
	f.Add(bytes.Join([][]byte{lines[0], lines[1], append([]byte("\r"), lines[2]...), lines[3]}, []byte("\n")))
	f.Fuzz(func(t *testing.T, text []byte) {
		var p translog.Proof
		if p.UnmarshalText(text) != nil {
			return
		}
		again, err := p.MarshalText()
		if err != nil || !bytes.Equal(again, text) {
			t.Errorf("%q reads as %+v, writes as %q, %v", text, p, again, err)
		}
	})
}

// TestReceiptFormat2 pins a receipt of format 2 (consentd-receipt/2) byte for byte, and
// checks that it verifies with the log's key alone while a receipt changed in any
// part does not: receipts are kept by visitors, and must verify forever.
func TestReceiptFormat2(t *testing.T) {
	r := testRecord()
	decision, err := translog.DecisionPart(r)
	if err != nil {
		t.Fatal(err)
	}
	snapshot := []byte(`{"site":"mixvoip.com","fingerprint":"fp-1","controller":{"name":"Mixvoip S.A.","jurisdiction":"LU"}}`)
	leaf, err := translog.NewLeaf(r, sha256.Sum256(snapshot), decision, []byte("salted identifying part"))
	if err != nil {
		t.Fatal(err)
	}
	leafBytes, err := leaf.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s, v := testSigner(t)
	m := newMemStorage()
	l, err := translog.Open(m.begin(), v)
	if err != nil {
		t.Fatal(err)
	}
	appendLeaves(t, m, l, s, 0, 2)
	tx := m.begin()
	b, err := l.Append(tx, []tlog.Hash{translog.LeafHash(leafBytes)}, s)
	if err != nil {
		t.Fatal(err)
	}
	tx.commit()
	l.Commit(b)
	appendLeaves(t, m, l, s, 3, 5)
	p, err := translog.Prove(tlog.HashReaderFunc(m.begin().ReadHashes), 2, l.Head())
	if err != nil {
		t.Fatal(err)
	}
	receipt, err := translog.NewReceipt(p, decision, leafBytes, string(snapshot))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(receipt, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want := golden(t, "receipt-v2.json", got)

	var kept consent.Receipt
	if err := json.Unmarshal(want, &kept); err != nil {
		t.Fatal(err)
	}
	verified, err := v.VerifyReceipt(&kept)
	if err != nil {
		t.Fatalf("the golden receipt: %v", err)
	}
	if verified.Record.ID != r.ID || verified.Index != 2 || verified.Checkpoint.Size != 5 || verified.Snapshot.Controller.Name != "Mixvoip S.A." {
		t.Errorf("the golden receipt proves %+v at %d in %d", verified.Record, verified.Index, verified.Checkpoint.Size)
	}
	// As POST /v1/consents answers it: the decision proved, not what was shown.
	lean := kept
	lean.Snapshot = ""
	if verified, err := v.VerifyReceipt(&lean); err != nil || verified.Snapshot != nil || verified.Record.ID != r.ID {
		t.Errorf("the receipt without its snapshot: %+v, %v", verified, err)
	}
	for name, change := range map[string]func(rc *consent.Receipt){
		"decision": func(rc *consent.Receipt) { rc.Decision = strings.Replace(rc.Decision, `"gpc":true`, `"gpc":false`, 1) },
		"snapshot": func(rc *consent.Receipt) { rc.Snapshot = strings.Replace(rc.Snapshot, "LU", "DE", 1) },
		"leaf":     func(rc *consent.Receipt) { rc.Leaf = bytes.Clone(rc.Leaf); rc.Leaf[20]++ },
		"index":    func(rc *consent.Receipt) { rc.Proof = strings.Replace(rc.Proof, "index 2", "index 3", 1) },
		"version":  func(rc *consent.Receipt) { rc.Version = "consentd-receipt/1" },
		// Two readings of one decision, hashed into a leaf of its own: which one a
		// reader takes depends on its parser.
		"ambiguous decision": func(rc *consent.Receipt) {
			*rc = *mustReceiptOf(t, strings.Replace(rc.Decision, `"action":"custom"`, `"ACTION":"accept_all","action":"custom"`, 1), r)
		},
		"another tree": func(rc *consent.Receipt) { rc.Proof = strings.Replace(rc.Proof, "\n5\n", "\n6\n", 1) },
	} {
		t.Run(name, func(t *testing.T) {
			rc := kept
			change(&rc)
			if reflect.DeepEqual(rc, kept) {
				t.Fatal("the case changes nothing")
			}
			if _, err := v.VerifyReceipt(&rc); !errors.Is(err, translog.ErrBadReceipt) {
				t.Errorf("VerifyReceipt: %v, want ErrBadReceipt", err)
			}
		})
	}
}

// mustReceiptOf returns a receipt of a log of its own whose decision part is the bytes
// decision, its leaf made for them: a log operator's own receipt.
func mustReceiptOf(t *testing.T, decision string, r *consent.Record) *consent.Receipt {
	t.Helper()
	leaf, err := translog.NewLeaf(r, [32]byte{}, []byte(decision), nil)
	if err != nil {
		t.Fatal(err)
	}
	leafBytes, err := leaf.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s, v := testSigner(t)
	m := newMemStorage()
	l, err := translog.Open(m.begin(), v)
	if err != nil {
		t.Fatal(err)
	}
	tx := m.begin()
	b, err := l.Append(tx, []tlog.Hash{translog.LeafHash(leafBytes)}, s)
	if err != nil {
		t.Fatal(err)
	}
	tx.commit()
	p, err := b.Prove(0, tlog.HashReaderFunc(m.begin().ReadHashes))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := translog.NewReceipt(p, []byte(decision), leafBytes, "")
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// FuzzDecisionPart: the decision part is RFC 8785's canonical form of the decision,
// whatever its strings: what jsontext's canonicalization makes of it.
func FuzzDecisionPart(f *testing.F) {
	f.Add("2026-01", "de", "marketing", "fp-1")
	f.Add("<b>&\u2028", "fr\x00", "ü-key", "\xff")
	f.Add(`a"b\c`, "\b\f\n\r\t", "\U0001F600", "\uE000")
	f.Add("\x7f\x1f", "\xed\xa0\x80", "\xff", "\xfe")
	f.Fuzz(func(t *testing.T, policy, language, key, fingerprint string) {
		r := testRecord()
		r.PolicyVersion, r.Language, r.Fingerprint = policy, language, fingerprint
		r.Choices.Categories[key] = true
		r.Choices.Categories["\uE000"+key] = false // sorts apart by UTF-16 and by UTF-8
		r.Choices.Partners[fingerprint] = true
		r.Choices.Partners[key] = false // a name twice once invalid UTF-8 is replaced: no canonical form
		r.URL, r.UserAgent = policy, key
		want, wantErr := reflectiveCanonical(decisionOf(r))
		got, err := translog.DecisionPart(r)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("DecisionPart: error %v, the reflective encoder's %v", err, wantErr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Errorf("decision:\n%q\nencoding/json/v2 and jsontext.Canonicalize:\n%q", got, want)
		}
		identifying, err := translog.IdentifyingPart(r)
		if err != nil {
			t.Fatal(err)
		}
		want, err = reflectiveCanonical(map[string]string{"ip_prefix": r.IPPrefix, "url": r.URL, "user_agent": r.UserAgent})
		if err != nil {
			t.Fatal(err)
		}
		if got := identifying[translog.SaltSize:]; !bytes.Equal(got, want) {
			t.Errorf("identifying part:\n%q\nencoding/json/v2 and jsontext.Canonicalize:\n%q", got, want)
		}
	})
}

// decisionOf is the decision part of r as a value a reflective encoder writes with
// the members DecisionPart writes.
func decisionOf(r *consent.Record) map[string]any {
	return map[string]any{
		"action": r.Action, "choices": r.Choices, "consent_id": r.ConsentID, "expires_at": r.ExpiresAt.UTC(),
		"fingerprint": r.Fingerprint, "gpc": r.GPC, "language": r.Language, "policy_version": r.PolicyVersion,
		"surface": r.Surface,
	}
}

// reflectiveCanonical is v as RFC 8785 canonical JSON by another road: encoding/json/v2
// with invalid UTF-8 replaced, then jsontext's Canonicalize.
func reflectiveCanonical(v any) ([]byte, error) {
	b, err := jsonv2.Marshal(v, jsontext.AllowInvalidUTF8(true))
	if err != nil {
		return nil, err
	}
	value := jsontext.Value(b)
	err = value.Canonicalize()
	return value, err
}
