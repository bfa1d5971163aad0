package deploy_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/mixvoip/consentd/internal/deploytest"
)

// TestCaddyfile: the Caddyfile, which e2e/proxy_test.go runs with its own certificate
// on loopback, is also a valid configuration as production sets its placeholders:
// under systemd (Let's Encrypt, consentd on this machine) and in compose.yaml. And
// it is as caddy fmt writes it.
func TestCaddyfile(t *testing.T) {
	caddy := deploytest.MustProgram(t, "caddy", "caddy")
	tests := []struct {
		name string
		env  []string
	}{
		{"systemd", []string{"CONSENTD_HOST=consent.example.com"}},
		{"systemd, ACME e-mail", []string{"CONSENTD_HOST=consent.example.com", "CONSENTD_TLS=dpo@example.com"}},
		{"compose", []string{"CONSENTD_HOST=consent.example.com", "CONSENTD_TLS=", "CONSENTD_UPSTREAM=consentd:8080"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			cmd := exec.Command(caddy, "validate", "--config", "Caddyfile", "--adapter", "caddyfile")
			// Only the placeholders the case sets: one set empty is not its default.
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "CONSENTD_") && !strings.HasPrefix(kv, "CADDY_") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, append(tt.env, "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("caddy validate: %v\n%s", err, out)
			}
		})
	}

	formatted, err := exec.Command(caddy, "fmt", "Caddyfile").Output()
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile("Caddyfile"); err != nil || string(data) != string(formatted) {
		t.Errorf("caddy fmt would change the Caddyfile (%v):\n%s", err, formatted)
	}
}
