package server

import "testing"

func TestDuplicateKey(t *testing.T) {
	tests := []struct {
		body, want string
		found      bool
	}{
		{`{"a":1,"b":2}`, "", false},
		{`{"a":1,"a":2}`, "a", true},
		{`{"a":{"x":1,"X":2}}`, "a.X", true},
		{`{"a":{"x":[1,{"y":1,"y":2}]}}`, "a.x.[].y", true},
		{`{"a":[],"b":{},"a":1}`, "a", true},
		{`{"":true,"":false}`, "", true},
		{`{"choices":{"categories":null,"partners":{"":true}}}`, "", false},
		{`{"a":{"b":1},"c":{"b":1}}`, "", false},
		{`[{"a":1},{"a":1}]`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			got, found := duplicateKey([]byte(tt.body))
			if got != tt.want || found != tt.found {
				t.Errorf("duplicateKey = %q, %t; want %q, %t", got, found, tt.want, tt.found)
			}
		})
	}
}
