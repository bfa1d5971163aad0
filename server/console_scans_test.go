package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mixvoip/consentd/scan"
	"github.com/mixvoip/consentd/server"
)

// TestConsoleScans: the console lists the scan reports kept and serves each, as a
// self-contained page under its own CSP or as JSON, with only the sites the token
// may see; a report of none of them does not exist for that token.
func TestConsoleScans(t *testing.T) {
	base := MustFixture(t, false)
	dir := scan.NewDir(t.TempDir())
	both := &scan.Report{Started: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), Sites: []*scan.Site{
		{Site: "mixvoip.com", Pages: []string{"https://mixvoip.com/"}, Findings: []scan.Finding{{
			Severity: scan.Violation, Kind: scan.NonEssential, State: scan.NoChoice, Subject: "cookie _track (mixvoip.com)",
			Message: "Cookie _track is used before any choice.", Evidence: []scan.Evidence{{Page: "https://mixvoip.com/", Detail: "first-party"}},
		}}},
		{Site: "voxbi.com", Pages: []string{"https://voxbi.com/"}},
	}}
	mixvoipOnly := &scan.Report{Started: both.Started.Add(time.Hour), Sites: []*scan.Site{both.Sites[0]}}
	var names []string
	for _, r := range []*scan.Report{both, mixvoipOnly} {
		name, err := dir.Save(r)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	f, all, voxbi := MustServerWith(t, MustFreshStore(t), base.cfg, server.Options{Scans: dir})

	list := f.do(t, http.MethodGet, "/dpo/scans", "", session(all))
	for _, want := range []string{names[0], names[1], "1 violation", "voxbi.com: no violation"} {
		if !strings.Contains(list.Body.String(), want) {
			t.Errorf("the list for a store-wide token lacks %q:\n%.2000s", want, list.Body)
		}
	}
	limited := f.do(t, http.MethodGet, "/dpo/scans", "", session(voxbi)).Body.String()
	if !strings.Contains(limited, names[0]) || strings.Contains(limited, names[1]) || strings.Contains(limited, "mixvoip") {
		t.Errorf("the list for a voxbi.com token shows another site's scan:\n%.2000s", limited)
	}

	page := f.do(t, http.MethodGet, "/dpo/scans/"+names[0], "", session(all))
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "Cookie _track is used before any choice.") ||
		page.Header().Get("Content-Security-Policy") != "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'" ||
		strings.Contains(page.Body.String(), "<script") {
		t.Errorf("the report: %d, CSP %q:\n%.1000s", page.Code, page.Header().Get("Content-Security-Policy"), page.Body)
	}
	for _, tt := range []struct {
		path   string
		status int
		sites  []string
	}{
		{"/dpo/scans/" + names[0] + ".json", http.StatusOK, []string{"voxbi.com"}},
		{"/dpo/scans/" + names[1] + ".json", http.StatusNotFound, nil},
		{"/dpo/scans/" + names[1], http.StatusNotFound, nil},
		{"/dpo/scans/scan-..%2F..%2Fetc%2Fpasswd", http.StatusNotFound, nil},
	} {
		rec := f.do(t, http.MethodGet, tt.path, "", session(voxbi))
		if rec.Code != tt.status {
			t.Errorf("GET %s with a voxbi.com token: %d, want %d", tt.path, rec.Code, tt.status)
			continue
		}
		if tt.status != http.StatusOK {
			continue
		}
		var r scan.Report
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || strings.Join(r.SiteKeys(), ",") != strings.Join(tt.sites, ",") {
			t.Errorf("GET %s: sites %v (%v), want %v", tt.path, r.SiteKeys(), err, tt.sites)
		}
	}

	none, noneAll, _ := MustServerOn(t, MustFreshStore(t), base.cfg)
	if rec := none.do(t, http.MethodGet, "/dpo/scans", "", session(noneAll)); !strings.Contains(rec.Body.String(), "--scan-dir") {
		t.Errorf("without reports, the page does not say how to get them:\n%.1000s", rec.Body)
	}
}
