package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
)

func TestDecodeConsentRequestStrictly(t *testing.T) {
	tests := []struct {
		body, want string // want: part of the error, "" for none
	}{
		{`{"site":"a","gpc":true}`, ""},
		{`{"site":"a","site":"b"}`, `member "site" is given twice`},
		{`{"gpc":false,"GPC":true}`, `unknown field "GPC"`},
		{`{"ſite":"b"}`, `unknown field "ſite"`},
		{`{"choices":{"categories":{"a":true},"categorieſ":{"a":false}}}`, `unknown field "choices.categorieſ"`},
		{`{"choices":{"categories":{"a":true,"a":false}}}`, `member "choices.categories.a" is given twice`},
		{`{"choices":{"categories":{"a":true,"A":false}}}`, ""}, // map keys: "A" is another (unknown) category
		{`{"choices":{"categories":{"":true,"":false}}}`, `member "choices.categories." is given twice`},
		{`{"choices":{"categories":null,"partners":{"":true}}}`, ""},
		{`{"site":[{"a":1,"a":2}]}`, `member "site.0.a" is given twice`},
		{`{"choices":{"categories":{"b":{}},"partners":{"b":{}}}}`, `field "choices.categories.b" has the wrong type`},
		{`{"gpc":"yes"}`, `field "gpc" has the wrong type`},
		{`{"site":"a"} {}`, "exactly one JSON object"},
		{`[]`, "expected a JSON object"},
		{` null `, "expected a JSON object"},
		{`{"site":`, "malformed or empty JSON"},
		{` `, "malformed or empty JSON"},
		{`{"site":"a",}`, "malformed JSON"},
		{"{\"site\":\"\xff\"}", "not valid UTF-8"},
		{`{"\u0073ite":"a","site":"b"}`, `member "site" is given twice`},
		{`{"choices":{"categories":{"a\"b":true,"a\u0022b":false}}}`, `member "choices.categories.a\"b" is given twice`},
		{`{"site":"a,\"}{[","gpc":true}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			_, err := decodeConsentRequest([]byte(tt.body))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("decodeConsentRequest = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("decodeConsentRequest = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestCreatedAnswer: the answer to POST, written member by member, reads back with
// encoding/json as the record's ids and time and its receipt without the snapshot,
// whatever the receipt's strings hold.
func TestCreatedAnswer(t *testing.T) {
	r := &consent.Record{
		ID: "01936b2e-7c4a-7def-8123-456789abcdef", ConsentID: "5f0c8a4e-2b1d-4c3e-9f6a-7b8c9d0e1f2a",
		RecordedAt: time.Date(2026, 12, 2, 10, 0, 0, 120000000, time.UTC),
	}
	receipt := &consent.Receipt{
		Version:  consent.ReceiptVersion,
		Decision: `{"policy_version":"<b>&\u2028\"\\","x":"\u0001ü"}`,
		Leaf:     []byte{0, 1, 0xfe, 0xff},
		Proof:    "c2sp.org/tlog-proof@v1\nindex 0\n\nlocalhost/x\n1\nAAAA\n\n— localhost/x abc=\n",
		Snapshot: "what the visitor was shown",
	}
	b, err := appendCreated(nil, r, receipt)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RecordID   string          `json:"record_id"`
		ConsentID  string          `json:"consent_id"`
		RecordedAt time.Time       `json:"recorded_at"`
		Receipt    consent.Receipt `json:"receipt"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	lean := *receipt
	lean.Snapshot = ""
	if got.RecordID != r.ID || got.ConsentID != r.ConsentID || !got.RecordedAt.Equal(r.RecordedAt) || !reflect.DeepEqual(got.Receipt, lean) {
		t.Errorf("%s reads as %+v", b, got)
	}
	if _, err := appendCreated(nil, r, &consent.Receipt{Decision: "\xff"}); err == nil {
		t.Error("a receipt with invalid UTF-8: no error")
	}
}
