package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mixvoip/consentd/internal/scantest"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/scan"
)

var reportLine = regexp.MustCompile(`report: (\S+)\.html \(and \.json\)`)

// TestScanCommand: consentd scan writes both reports and exits 0 on a clean site,
// within the page limit; it exits 1 and lists the findings where a site breaks
// sites.yaml.
func TestScanCommand(t *testing.T) {
	scantest.MustBrowser(t)
	fixture := scantest.Start(t)
	out := t.TempDir()
	scanArgs := func(extra ...string) []string {
		return append([]string{"scan", "--config", fixture.Config, "--host-resolver-rules", fixture.HostRules,
			"--out", out, "--settle", "200ms", "--quiet"}, extra...)
	}
	ctx, cancel := wait.Context(t, context.Background())
	defer cancel()

	var stdout bytes.Buffer
	if err := run(ctx, scanArgs("--site", "clean.test", "--pages", "1"), &stdout, io.Discard); err != nil {
		t.Fatalf("scan of the clean site: %v\n%s", err, stdout.String())
	}
	if !strings.Contains(stdout.String(), "clean.test: 2 pages, 0 violations, 0 warnings\n") {
		t.Errorf("scan of the clean site, --pages 1, says:\n%s", stdout.String())
	}
	m := reportLine.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no report named in:\n%s", stdout.String())
	}
	page, err := os.ReadFile(m[1] + ".html")
	if err != nil || !strings.Contains(string(page), "No violation") {
		t.Errorf("the HTML report: %v\n%.500s", err, page)
	}

	stdout.Reset()
	err = run(ctx, scanArgs("--site", "inline.test", "--site", "nobanner.test", "--pages", "0"), &stdout, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "4 violations") {
		t.Fatalf("scan of two broken sites: %v, want 4 violations\n%s", err, stdout.String())
	}
	for _, want := range []string{
		"inline.test: 1 page, 3 violations, 0 warnings",
		"violation, Before any choice: Cookie _track is used before any choice",
		"nobanner.test: 1 page, 1 violation, 0 warnings",
		"violation, Before any choice: consentd's banner never appeared",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, stdout.String())
		}
	}
	if m = reportLine.FindStringSubmatch(stdout.String()); m == nil {
		t.Fatalf("no report named in:\n%s", stdout.String())
	}
	doc, err := os.ReadFile(m[1] + ".json")
	var r scan.Report
	if err == nil {
		err = json.Unmarshal(doc, &r)
	}
	if err != nil || strings.Join(r.SiteKeys(), " ") != "inline.test nobanner.test" {
		t.Errorf("the JSON report: %v, sites %v", err, r.SiteKeys())
	}
}

// TestScanCommandRefuses: what cannot be scanned is said in one sentence, before
// any browser starts.
func TestScanCommandRefuses(t *testing.T) {
	fixture := scantest.Start(t)
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"--site", "nosuch.test"}, "--site nosuch.test: not a site of"},
		{[]string{"--pages", "-1"}, "--pages -1: from 0 to 1000"},
		{[]string{"--time", "10s"}, "--time 10s: at least 1m"},
		{[]string{"--settle", "1ms"}, "--settle 1ms: from 100ms to 1m"},
		{[]string{"clean.test"}, "a site is given with --site"},
	} {
		err := runRefused(t, append([]string{"scan", "--config", fixture.Config, "--out", t.TempDir()}, tt.args...)...)
		if !strings.Contains(err.Error(), tt.says) {
			t.Errorf("scan %v: %v, want it to say %q", tt.args, err, tt.says)
		}
	}
	err := runRefused(t, "scan", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("scan of a missing sites.yaml: %v", err)
	}
}

// TestServeScans: consentd serve --scan-every scans the sites it serves at start
// when its directory holds no report, and keeps the report where the console
// shows it.
func TestServeScans(t *testing.T) {
	scantest.MustBrowser(t)
	fixture := scantest.Start(t)
	dir := t.TempDir()
	reports := filepath.Join(dir, "scans")
	m := NewMain(io.Discard, io.Discard)
	if err := m.ParseFlags([]string{"--addr", "127.0.0.1:0", "--config", fixture.Config, "--db", filepath.Join(dir, "consent.db"),
		"--keys", filepath.Join(dir, "keys"), "--tokens", filepath.Join(dir, "tokens.json"), "--origin", "localhost/scan-test",
		"--scan-dir", reports, "--scan-every", "24h", "--scan-pages", "0", "--scan-settle", "200ms",
		"--scan-host-resolver-rules", fixture.HostRules}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		name string
		err  error
	}
	scanned := make(chan result, 1)
	m.scanned = func(name string, err error) { scanned <- result{name, err} }
	MustStart(t, m)
	var got result
	select {
	case got = <-scanned:
	case <-wait.Timeout(t):
		t.Fatal("no scan at start")
	}
	if got.err != nil {
		t.Fatalf("the scan: %v", got.err)
	}
	list, err := scan.NewDir(reports).List()
	if err != nil || len(list) != 1 || list[0].Name != got.name || len(list[0].Sites) != 7 {
		t.Fatalf("reports kept: %+v, %v; want the one of 7 sites, %s", list, err, got.name)
	}
	violations := map[string]int{}
	for _, s := range list[0].Sites {
		violations[s.Site] = s.Violations
	}
	if violations["clean.test"] != 0 || violations["inline.test"] != 3 {
		t.Errorf("violations by site: %v", violations)
	}
}

// TestServeScanFlags: --scan-every needs a directory, and an hour at least.
func TestServeScanFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"--scan-every", "24h"}, "--scan-every needs --scan-dir"},
		{[]string{"--scan-every", "5m", "--scan-dir", t.TempDir()}, "--scan-every 5m0s: at least 1h"},
		{[]string{"--scan-pages", "5000"}, "--scan-pages 5000: from 0 to 1000"},
	} {
		err := NewMain(io.Discard, io.Discard).ParseFlags(append([]string{"--origin", "localhost/x"}, tt.args...))
		if err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("serve %v: %v, want it to say %q", tt.args, err, tt.says)
		}
	}
}
