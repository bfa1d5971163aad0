package browser_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/scantest"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/scan"
	"github.com/mixvoip/consentd/scan/browser"
)

// MustScan scans the fixture's sites in Chromium, all of them or those of keys. It
// skips only where the browser tests are switched off (CONSENTD_SKIP_BROWSER=1).
func MustScan(tb testing.TB, fixture *scantest.Sites, opts browser.Options, keys ...string) *scan.Report {
	tb.Helper()
	scantest.MustBrowser(tb)
	cfg, err := config.Load(fixture.Config)
	if err != nil {
		tb.Fatal(err)
	}
	if len(keys) == 0 {
		keys = cfg.SiteKeys()
	}
	var sites []*consent.Site
	for _, k := range keys {
		sites = append(sites, cfg.Sites[k])
	}
	ctx, cancel := wait.Context(tb, context.Background())
	defer cancel()
	opts.HostRules = fixture.HostRules
	// Unless the test is about it, a limit far beyond any machine, loaded or not.
	// The fixture's pages make no late requests: the quiet time only shortens the
	// test.
	if opts.Time == 0 {
		opts.Time = time.Hour
	}
	opts.Quiet = 200 * time.Millisecond
	r, err := browser.Scan(ctx, sites, opts)
	if err != nil {
		tb.Fatalf("scan: %v (install Debian's chromium, or set CONSENTD_SKIP_BROWSER=1 to skip the browser tests)", err)
	}
	return r
}

// TestScanFindsPlantedDefects scans a clean site and one site for each defect the
// scan must find: each is found, in its state, on its page, with its evidence, and
// nothing else is.
func TestScanFindsPlantedDefects(t *testing.T) {
	fixture := scantest.Start(t)
	r := MustScan(t, fixture, browser.Options{})

	type want struct {
		kind    scan.Kind
		state   scan.State
		subject string
		partner string
		detail  string // in the evidence of the site's start page
	}
	const gtagURL = "http://www.googletagmanager.com/gtag/js?id=AW-12"
	tests := map[string][]want{
		"clean.test": nil,
		// a Google tag pasted into the page, not gated
		"gtag.test": {
			{scan.NonEssential, scan.NoChoice, "cookie _gcl_au (gtag.test)", "google-ads", "first-party"},
			{scan.NonEssential, scan.NoChoice, "host www.googletagmanager.com", "google-ads", gtagURL + " (script, HTTP 200), from http://gtag.test/"},
			{scan.NonEssential, scan.Rejected, "cookie _gcl_au (gtag.test)", "google-ads", "first-party"},
			{scan.NonEssential, scan.Rejected, "host www.googletagmanager.com", "google-ads", gtagURL},
		},
		// a first-party tracking cookie set by an inline script
		"inline.test": {
			{scan.NonEssential, scan.NoChoice, "cookie _track (inline.test)", "", "first-party, expires"},
			{scan.NonEssential, scan.Rejected, "cookie _track (inline.test)", "", "first-party"},
			{scan.Undeclared, scan.Accepted, "cookie _track (inline.test)", "", "first-party"},
		},
		// a partner's tag that sets a cookie its partner does not declare
		"undeclared.test": {
			{scan.Undeclared, scan.Accepted, "cookie _gr_uid (undeclared.test)", "", "in 30 days"},
		},
		// a declared cookie set for 2 years, not the 90 days declared; Chromium keeps a
		// cookie 400 days at most
		"lifetime.test": {
			{scan.LongerLifetime, scan.Accepted, "cookie _ll (lifetime.test)", "longlived", "in 13 months"},
		},
		// an enabled partner whose tag is not there, and a dead link, which is no
		// page without a banner
		"broken.test": {
			{scan.BrokenTag, scan.Accepted, "partner broken", "broken", "http://tags.partner.test/missing.js?id=16 (script, HTTP 404"},
			{scan.NotLoaded, scan.NoChoice, "page", "", "the page answered HTTP 404"},
		},
		// a page without the banner's script
		"nobanner.test": {
			{scan.NoBanner, scan.NoChoice, "banner", "", "the page loads no script /v1/banner/nobanner.test.js"},
		},
	}
	if got := r.SiteKeys(); len(got) != len(tests) {
		t.Fatalf("report has sites %v, want %d", got, len(tests))
	}
	for _, s := range r.Sites {
		t.Run(s.Site, func(t *testing.T) {
			wants := tests[s.Site]
			start := "http://" + s.Site + "/"
			for _, f := range s.Findings {
				i := slices.IndexFunc(wants, func(w want) bool { return w.kind == f.Kind && w.state == f.State && w.subject == f.Subject })
				if i < 0 {
					t.Errorf("unexpected finding: %s %s %s: %s %+v", f.Kind, f.State, f.Subject, f.Message, f.Evidence)
					continue
				}
				w := wants[i]
				wants = slices.Delete(wants, i, i+1)
				if f.Partner != w.partner {
					t.Errorf("%s %s: partner %q, want %q", f.State, f.Subject, f.Partner, w.partner)
				}
				wantSeverity := scan.Violation
				if f.Kind == scan.BrokenTag || f.Kind == scan.NotLoaded {
					wantSeverity = scan.Warning
				}
				if f.Severity != wantSeverity {
					t.Errorf("%s %s: severity %s, want %s", f.State, f.Subject, f.Severity, wantSeverity)
				}
				page := start
				if f.Kind == scan.NotLoaded {
					page = "http://broken.test/gone" // the dead link
				}
				if len(f.Evidence) != 1 || f.Evidence[0].Page != page || !strings.Contains(f.Evidence[0].Detail, w.detail) {
					t.Errorf("%s %s: evidence %+v, want on %s with %q", f.State, f.Subject, f.Evidence, page, w.detail)
				}
			}
			for _, w := range wants {
				t.Errorf("not found: %s %s %s", w.kind, w.state, w.subject)
			}
		})
	}

	t.Run("clean.test inventory", func(t *testing.T) {
		s := r.Sites[slices.Index(r.SiteKeys(), "clean.test")]
		if want := []string{"http://clean.test/", "http://clean.test/about", "http://clean.test/contact", "http://clean.test/news"}; !slices.Equal(s.Pages, want) {
			t.Errorf("pages %v, want %v: the start page, its links on the site, and the sitemap's", s.Pages, want)
		}
		if s.Incomplete != "" {
			t.Errorf("incomplete: %s", s.Incomplete)
		}
		byState := map[scan.State]scan.Inventory{}
		for _, inv := range s.Inventory {
			byState[inv.State] = inv
		}
		cookies := func(st scan.State) map[string]scan.OwnerKind {
			out := map[string]scan.OwnerKind{}
			for _, c := range byState[st].Cookies {
				out[c.Name] = c.Owner.Kind
			}
			return out
		}
		hosts := func(st scan.State) map[string]scan.OwnerKind {
			out := map[string]scan.OwnerKind{}
			for _, h := range byState[st].Hosts {
				out[h.Host] = h.Owner.Kind
			}
			return out
		}
		checks := []struct {
			state          scan.State
			cookies, hosts map[string]scan.OwnerKind
		}{
			{scan.NoChoice, map[string]scan.OwnerKind{"sid": scan.KindTechnical}, map[string]scan.OwnerKind{"consent.test": scan.KindConsentd}},
			{scan.Rejected, map[string]scan.OwnerKind{"sid": scan.KindTechnical, "consent": scan.KindConsentd}, map[string]scan.OwnerKind{"consent.test": scan.KindConsentd}},
			{scan.Accepted, map[string]scan.OwnerKind{"sid": scan.KindTechnical, "consent": scan.KindConsentd, "_px": scan.KindPartner},
				map[string]scan.OwnerKind{"consent.test": scan.KindConsentd, "tags.partner.test": scan.KindPartner, "collect.partner.test": scan.KindPartner}},
		}
		for _, c := range checks {
			if got := cookies(c.state); !equal(got, c.cookies) {
				t.Errorf("%s: cookies %v, want %v", c.state, got, c.cookies)
			}
			if got := hosts(c.state); !equal(got, c.hosts) {
				t.Errorf("%s: hosts %v, want %v", c.state, got, c.hosts)
			}
		}
	})

	t.Run("safety", func(t *testing.T) {
		if sent := fixture.Sent(); len(sent) > 0 {
			t.Errorf("the sites got %v: a scan submits no form", sent)
		}
		if strangers := fixture.Strangers(); len(strangers) > 0 {
			t.Errorf("the browser asked %v for pages: a scan stays on the sites' origins", strangers)
		}
		s := r.Sites[slices.Index(r.SiteKeys(), "clean.test")]
		blocked := map[string]string{
			"http://clean.test/contact": "a form sent with POST to http://clean.test/contact",
			"http://clean.test/news":    "a navigation away from the site, to http://elsewhere.test/",
		}
		for _, v := range s.Visits {
			if want, ok := blocked[v.Page]; ok && v.State == scan.NoChoice && !strings.Contains(v.Error, want) {
				t.Errorf("%s %s: error %q, want it to say %q", v.Page, v.State, v.Error, want)
			}
		}
	})
}

func equal(a, b map[string]scan.OwnerKind) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestScanTimeLimit: a scan out of time visits nothing more and says so.
func TestScanTimeLimit(t *testing.T) {
	fixture := scantest.Start(t)
	r := MustScan(t, fixture, browser.Options{Time: time.Nanosecond}, "clean.test")
	s := r.Sites[0]
	if len(s.Pages) != 0 || len(s.Visits) != 0 || !strings.Contains(s.Incomplete, "the time limit of 1ns ran out") {
		t.Errorf("a scan out of time: pages %v, %d visits, incomplete %q", s.Pages, len(s.Visits), s.Incomplete)
	}
}
