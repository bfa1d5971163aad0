package scan_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/scan"
)

func testSite() *consent.Site {
	return &consent.Site{
		Key:        "example.co.uk",
		Origins:    []string{"https://example.co.uk", "https://www.example.co.uk"},
		Cookie:     consent.CookieSettings{Name: "consent"},
		Categories: []consent.Category{{ID: "technical", Required: true}, {ID: "advertising", Name: consent.Text{"en": "Advertising"}}},
		Technical: consent.Technical{
			Cookies: []consent.Cookie{{Name: "sess_*", Lifetime: "session"}, {Name: "lang", Lifetime: "1 year"}},
			Storage: []string{"cart"},
			Hosts:   []string{"*.cdn.test"},
		},
		Partners: []consent.Partner{
			{ID: "ads", Name: "Ads", Enabled: true, Category: "advertising", Cookies: []consent.Cookie{{Name: "_ads", Lifetime: "30 days"}},
				Storage: []string{"ads_*"}, Hosts: []string{"*.ads.test"}, Tags: []consent.Tag{{Src: "https://tag.ads-cdn.test/a.js"}}},
			{ID: "off", Name: "Off", Category: "advertising", Cookies: []consent.Cookie{{Name: "_off", Lifetime: "30 days"}},
				Tags: []consent.Tag{{Src: "https://off.test/o.js"}}},
		},
	}
}

// TestAnalyze: what each state allows, whose each thing is, and what the findings
// say, from visits made up as a browser would report them.
func TestAnalyze(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	days := func(n int) time.Time { return at.Add(time.Duration(n) * 24 * time.Hour) }
	req := func(u, host string) scan.Request {
		return scan.Request{URL: u, Host: host, Type: "Script", Status: 200}
	}
	const page = "https://example.co.uk/"
	tests := []struct {
		name  string
		visit scan.Visit
		want  []string // "kind state subject partner"
	}{
		{"technical and consentd's before a choice", scan.Visit{State: scan.NoChoice, Loaded: true, Banner: true, BannerScript: "https://consent.test/v1/banner/example.co.uk.js",
			Cookies:  []scan.Cookie{{Name: "sess_1", Domain: "example.co.uk", Session: true}, {Name: "lang", Domain: ".example.co.uk", Expires: days(300)}},
			Storage:  []scan.StorageKey{{Area: "local", Key: "cart"}},
			Requests: []scan.Request{req("https://consent.test/v1/banner/example.co.uk.js", "consent.test"), req("https://img.cdn.test/x.png", "img.cdn.test"), req("https://static.example.co.uk/a.js", "static.example.co.uk")}},
			nil},
		{"the site's cookie names on another site", scan.Visit{State: scan.NoChoice, Loaded: true, Banner: true,
			Cookies: []scan.Cookie{{Name: "consent", Domain: ".tracker.test", Session: true}, {Name: "sess_9", Domain: "tracker.test", Session: true}}},
			[]string{"non-essential no-choice cookie consent (.tracker.test) ", "non-essential no-choice cookie sess_9 (tracker.test) "}},
		{"a partner's before a choice", scan.Visit{State: scan.NoChoice, Loaded: true, Banner: true,
			Cookies:  []scan.Cookie{{Name: "_ads", Domain: ".example.co.uk", Expires: days(30)}},
			Requests: []scan.Request{req("https://tag.ads-cdn.test/a.js", "tag.ads-cdn.test")}},
			[]string{"non-essential no-choice cookie _ads (.example.co.uk) ads", "non-essential no-choice host tag.ads-cdn.test ads"}},
		{"undeclared after a refusal", scan.Visit{State: scan.Rejected, Loaded: true, Banner: true,
			Storage:  []scan.StorageKey{{Area: "session", Key: "tracker"}},
			Requests: []scan.Request{req("https://px.ads.test/hit", "px.ads.test")}},
			[]string{"non-essential reject-all host px.ads.test ads", "non-essential reject-all sessionStorage key tracker "}},
		{"declared by enabled partners after consent", scan.Visit{State: scan.Accepted, Loaded: true, Banner: true,
			Cookies:  []scan.Cookie{{Name: "_ads", Domain: ".example.co.uk", Expires: days(30)}},
			Storage:  []scan.StorageKey{{Area: "local", Key: "ads_id"}},
			Requests: []scan.Request{req("https://tag.ads-cdn.test/a.js", "tag.ads-cdn.test"), req("https://ads.test/p", "ads.test")}},
			nil},
		{"a disabled partner's and nobody's after consent", scan.Visit{State: scan.Accepted, Loaded: true, Banner: true,
			Cookies:  []scan.Cookie{{Name: "_off", Domain: ".example.co.uk", Expires: days(30)}, {Name: "_x", Domain: "tracker.test", Expires: days(1)}},
			Requests: []scan.Request{req("https://tag.ads-cdn.test/a.js", "tag.ads-cdn.test"), req("https://off.test/o.js", "off.test"), req("https://tracker.test/t", "tracker.test")}},
			[]string{"undeclared accept-all cookie _off (.example.co.uk) off", "undeclared accept-all cookie _x (tracker.test) ", "undeclared accept-all host off.test off", "undeclared accept-all host tracker.test "}},
		{"longer than declared, in any state", scan.Visit{State: scan.NoChoice, Loaded: true, Banner: true,
			Cookies: []scan.Cookie{{Name: "lang", Domain: ".example.co.uk", Expires: days(400)}, {Name: "sess_2", Domain: "example.co.uk", Expires: days(1)}}},
			[]string{"longer-lifetime no-choice cookie lang (.example.co.uk) ", "longer-lifetime no-choice cookie sess_2 (example.co.uk) "}},
		{"a lifetime within the hour of slack", scan.Visit{State: scan.Accepted, Loaded: true, Banner: true,
			Cookies:  []scan.Cookie{{Name: "_ads", Domain: ".example.co.uk", Expires: days(30).Add(59 * time.Minute)}},
			Requests: []scan.Request{req("https://tag.ads-cdn.test/a.js", "tag.ads-cdn.test")}},
			nil},
		{"a tag that failed", scan.Visit{State: scan.Accepted, Loaded: true, Banner: true,
			Requests: []scan.Request{{URL: "https://tag.ads-cdn.test/a.js", Host: "tag.ads-cdn.test", Type: "Script", Failed: "net::ERR_NAME_NOT_RESOLVED"}}},
			[]string{"broken-tag accept-all partner ads ads"}},
		{"no banner", scan.Visit{State: scan.NoChoice, Loaded: true}, []string{"no-banner no-choice banner "}},
		{"a page that did not load: no banner is due", scan.Visit{State: scan.NoChoice, Error: "the page answered HTTP 404"}, []string{"not-loaded no-choice page "}},
		{"no banner to accept in: no tag is due", scan.Visit{State: scan.Accepted, Error: "no banner to choose in"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.visit.Page, tt.visit.At = page, at
			s := scan.Analyze(testSite(), []string{page}, []scan.Visit{tt.visit})
			var got []string
			for _, f := range s.Findings {
				got = append(got, strings.Join([]string{string(f.Kind), string(f.State), f.Subject, f.Partner}, " "))
				if len(f.Evidence) != 1 || f.Evidence[0].Page != page || f.Evidence[0].Detail == "" || f.Message == "" {
					t.Errorf("%s: message %q, evidence %+v", f.Subject, f.Message, f.Evidence)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestAnalyzeEvidence: a finding met on many pages is one finding, naming ten
// pages and counting the others, violations before warnings.
func TestAnalyzeEvidence(t *testing.T) {
	var visits []scan.Visit
	var pages []string
	for i := range 12 {
		p := "https://example.co.uk/p" + string(rune('a'+i))
		pages = append(pages, p)
		visits = append(visits,
			scan.Visit{Page: p, State: scan.NoChoice, Loaded: true, Banner: true, Cookies: []scan.Cookie{{Name: "_t", Domain: "example.co.uk", Session: true}}},
			scan.Visit{Page: p, State: scan.Accepted, Loaded: true, Banner: true})
	}
	s := scan.Analyze(testSite(), pages, visits)
	if len(s.Findings) != 2 || s.Findings[0].Kind != scan.NonEssential || s.Findings[1].Kind != scan.BrokenTag {
		t.Fatalf("findings %+v, want the cookie's violation, then the tag's warning", s.Findings)
	}
	if f := s.Findings[0]; len(f.Evidence) != 10 || f.More != 2 {
		t.Errorf("evidence of %d pages and %d more, want 10 and 2", len(f.Evidence), f.More)
	}
	if v, w := s.Counts(); v != 1 || w != 1 {
		t.Errorf("counts %d, %d", v, w)
	}
	inv := s.Inventory[0]
	if inv.State != scan.NoChoice || len(inv.Cookies) != 1 || len(inv.Cookies[0].Pages) != 12 || inv.Cookies[0].Party != scan.PartyFirst {
		t.Errorf("inventory before a choice: %+v", inv)
	}
}

// TestDir: reports saved are listed newest first and load again; the oldest go
// beyond keep; a name that is not a report's and a damaged file are refused with
// one sentence.
func TestDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scans")
	d := scan.NewDir(path)
	if list, err := d.List(); err != nil || len(list) != 0 {
		t.Fatalf("a directory not yet made: %v, %v", list, err)
	}
	start := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	var names []string
	for i := range 3 {
		r := &scan.Report{Started: start.Add(time.Duration(i) * 24 * time.Hour), Limits: scan.Limits{Time: scan.Seconds(time.Minute)},
			Sites: []*scan.Site{{Site: "example.co.uk", Findings: []scan.Finding{{Severity: scan.Warning}}}}}
		name, err := d.Save(r)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if err := d.Prune(2); err != nil {
		t.Fatal(err)
	}
	list, err := scan.NewDir(path).List()
	if err != nil || len(list) != 2 || list[0].Name != names[2] || list[1].Name != names[1] || list[0].Sites[0].Warnings != 1 {
		t.Fatalf("after pruning to 2: %+v, %v", list, err)
	}
	if _, err := os.Stat(filepath.Join(path, names[0]+".html")); !os.IsNotExist(err) {
		t.Errorf("the oldest HTML report is still there: %v", err)
	}
	r, err := d.Load(names[2])
	if err != nil || r.Limits.Time != scan.Seconds(time.Minute) || !r.Started.Equal(start.Add(48*time.Hour)) {
		t.Errorf("load: %+v, %v", r, err)
	}
	for _, name := range []string{"../../etc/passwd", names[0], "scan-x"} {
		if _, err := d.Load(name); err != scan.ErrNoReport {
			t.Errorf("load %q: %v, want ErrNoReport", name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(path, names[1]+".json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(names[1]); err == nil || !strings.Contains(err.Error(), "is not a scan report") || strings.Contains(err.Error(), "\n") {
		t.Errorf("a damaged report: %v", err)
	}
}

// TestWriteHTML: the report stands alone (no script, nothing loaded from
// elsewhere), and shows the findings before the inventory.
func TestWriteHTML(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	const page = "https://example.co.uk/"
	s := scan.Analyze(testSite(), []string{page}, []scan.Visit{{Page: page, State: scan.NoChoice, At: at, Loaded: true, Banner: true,
		Cookies: []scan.Cookie{{Name: "_t<b>", Domain: "example.co.uk", Session: true}}}})
	var b strings.Builder
	if err := scan.WriteHTML(&b, &scan.Report{Started: at, Finished: at, Sites: []*scan.Site{s}}); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, banned := range []string{"<script", "<link", "src=", "@import", "url(", "_t<b>"} {
		if strings.Contains(html, banned) {
			t.Errorf("the report holds %q", banned)
		}
	}
	findings, inventory := strings.Index(html, "Cookie _t&lt;b&gt; is used before any choice"), strings.Index(html, "Full inventory")
	if findings < 0 || inventory < 0 || findings > inventory || !strings.Contains(html, "1 violation") {
		t.Errorf("findings at %d, inventory at %d:\n%s", findings, inventory, html)
	}
}
