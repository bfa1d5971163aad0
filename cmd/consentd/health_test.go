package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHealthURL: consentd health asks the listener consentd serve opens with the
// same environment, on this machine.
func TestHealthURL(t *testing.T) {
	tests := []struct{ addr, admin, want string }{
		{"", "", "http://127.0.0.1:8080/readyz"},
		{":8081", "", "http://127.0.0.1:8081/readyz"},
		{":8080", ":9090", "http://127.0.0.1:9090/readyz"},
		{":8080", "127.0.0.1:9091", "http://127.0.0.1:9091/readyz"},
		{"0.0.0.0:8080", "[::]:9090", "http://127.0.0.1:9090/readyz"},
		{"[::1]:8080", "", "http://[::1]:8080/readyz"},
		{"localhost:8080", "", "http://localhost:8080/readyz"},
	}
	for _, tt := range tests {
		t.Run(tt.addr+" "+tt.admin, func(t *testing.T) {
			t.Setenv("CONSENTD_ADDR", tt.addr)
			t.Setenv("CONSENTD_ADMIN_ADDR", tt.admin)
			if got := defaultReadyURL(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestHealth: exit 0 when consentd is ready, found by its environment alone; else 1
// naming the checks that failed and why, and nothing about those that passed.
func TestHealth(t *testing.T) {
	tests := []struct {
		name   string
		tokens string // the token file's content; none if empty
		want   []string
	}{
		{"ready", "", nil},
		{"broken token file", `{"tokens": [`, []string{"503 Service Unavailable", "\n  tokens: no token file is loaded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.tokens != "" {
				if err := os.WriteFile(filepath.Join(dir, "tokens.json"), []byte(tt.tokens), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			m, addr, _ := mustServeIn(t, "../../sites.yaml", dir, "--admin-addr", "127.0.0.1:0")
			t.Setenv("CONSENTD_ADDR", addr)
			t.Setenv("CONSENTD_ADMIN_ADDR", m.addrs[1].String()) // the admin one
			_, _, err := runConsentd("health")
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("consentd health: %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatal("consentd health succeeded, want a failure")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("consentd health: %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "store") {
				t.Errorf("consentd health: %q names a check that passed", err)
			}
		})
	}

	_, _, err := runConsentd("health", "--url", "http://127.0.0.1:1/readyz")
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("consentd health with nothing listening: %v, want connection refused", err)
	}
}
