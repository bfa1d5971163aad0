package deploy_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// composeFile is what the test reads of compose.yaml, in the short syntax it uses.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Build struct {
		Args map[string]string `yaml:"args"`
	} `yaml:"build"`
	User        string            `yaml:"user"`
	ReadOnly    bool              `yaml:"read_only"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Networks    map[string]struct {
		IPv4Address string `yaml:"ipv4_address"`
	} `yaml:"networks"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// volume returns the source and options of the service's volume mounted at target.
func (s composeService) volume(target string) (source string, options string) {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target {
			return parts[0], strings.Join(parts[2:], ":")
		}
	}
	return "", ""
}

// TestCompose reads compose.yaml (no docker compose here to do it): consentd runs
// read-only as the image's user with its data in a volume, publishes nothing beyond
// this machine, believes X-Forwarded-For from Caddy alone, and Caddy runs the
// Caddyfile that e2e/proxy_test.go tests, in front of consentd's public listener.
func TestCompose(t *testing.T) {
	data, err := os.ReadFile("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	d := mustReadDockerfile(t)
	consentd, caddy := c.Services["consentd"], c.Services["caddy"]
	dataVolume, _ := consentd.volume(d.volume)
	sites, sitesOptions := consentd.volume(envValue(d.env, "CONSENTD_CONFIG"))
	caddyfile, caddyfileOptions := caddy.volume("/etc/caddy/Caddyfile")
	_, hasDataVolume := c.Volumes[dataVolume]
	var proxyNetwork, proxyAddress string
	for name, n := range caddy.Networks {
		proxyNetwork, proxyAddress = name, n.IPv4Address
	}
	_, sameNetwork := consentd.Networks[proxyNetwork]
	var published []string
	for _, p := range consentd.Ports {
		if host, _, ok := strings.Cut(p, ":"); !ok || !net.ParseIP(host).IsLoopback() {
			published = append(published, p)
		}
	}

	mustFacts(t, []fact{
		{"the image's user", consentd.User, d.user},
		{"a read-only root", consentd.ReadOnly, true},
		{"the version as a build argument", consentd.Build.Args["VERSION"] != "", true},
		{"a named volume at the image's", hasDataVolume, true},
		{"sites.yaml read-only", [2]string{sites, sitesOptions}, [2]string{"./sites.yaml", "ro"}},
		{"the image's HEALTHCHECK", consentd.Healthcheck.Test, append([]string{"CMD"}, d.healthcheck...)},
		{"ports published beyond loopback", published, []string(nil)},
		{"on Caddy's network", sameNetwork, true},
		{"the trusted proxy, Caddy", consentd.Environment["CONSENTD_TRUSTED_PROXIES"], proxyAddress + "/32"},
		{"the tested Caddyfile, read-only", [2]string{filepath.Clean(caddyfile), caddyfileOptions}, [2]string{"deploy/Caddyfile", "ro"}},
		{"Caddy's upstream, consentd's public listener", caddy.Environment["CONSENTD_UPSTREAM"], "consentd:" + mustPort(t, envValue(d.env, "CONSENTD_ADDR"))},
		{"Caddy's host name required", strings.HasPrefix(caddy.Environment["CONSENTD_HOST"], "${CONSENTD_HOST:?"), true},
	})
}
