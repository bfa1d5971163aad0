package server

import (
	"strings"
	"testing"
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
