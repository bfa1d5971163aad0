package auth_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mixvoip/consentd/auth"
)

func TestTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	ts, err := auth.Load(path)
	if err != nil || len(ts.List) != 0 {
		t.Fatalf("missing file: %+v, %v", ts, err)
	}
	now := time.Now()
	all, err := ts.Add("dpo", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	limited, err := ts.Add("agency", []string{"voxbi.com"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Add("dpo", nil, now); err == nil {
		t.Error("a second active token with the same name was made")
	}
	if err := ts.Save(path); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), all) || strings.Contains(string(data), limited) {
		t.Fatal("the file holds a token itself, not only its hash")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}

	ts, err = auth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		secret string
		name   string
	}{
		{all, "dpo"}, {limited, "agency"}, {"", ""}, {all + "x", ""}, {"cdt_guess", ""},
	}
	for _, tt := range tests {
		got := ts.Authenticate(tt.secret)
		if (got == nil && tt.name != "") || (got != nil && got.Name != tt.name) {
			t.Errorf("Authenticate(%q) = %+v, want %q", tt.secret, got, tt.name)
		}
	}
	if a := ts.Authenticate(limited); a.MaySee("mixvoip.com") || !a.MaySee("voxbi.com") {
		t.Error("a token limited to voxbi.com sees other sites")
	}
	if err := ts.Revoke("dpo", now); err != nil {
		t.Fatal(err)
	}
	if ts.Authenticate(all) != nil {
		t.Error("a revoked token still authenticates")
	}

	os.Chmod(path, 0o666)
	if _, err := auth.Load(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a file others may write: %v", err)
	}
}
