package server

import (
	"strings"
	"testing"
)

func TestCheckMembers(t *testing.T) {
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
		{`{"site":[{"a":1,"a":2}]}`, `member "site.[].a" is given twice`},
		{`{"choices":{"categories":{"b":{}},"partners":{"b":{}}}}`, ""},
		{`{"\u0073ite":"a","site":"b"}`, `member "site" is given twice`},
		{`{"choices":{"categories":{"a\"b":true,"a\u0022b":false}}}`, `member "choices.categories.a\"b" is given twice`},
		{`{"site":"a,\"}{[","gpc":true}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			err := checkMembers([]byte(tt.body))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("checkMembers = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("checkMembers = %v, want %q", err, tt.want)
			}
		})
	}
}
