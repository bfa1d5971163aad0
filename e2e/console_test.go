package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	pngpkg "image/png"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
	"github.com/mixvoip/consentd/proof"
)

// TestConsoleSignIn: the console sends a visitor without a session to its sign-in
// page; a wrong token is refused and sets nothing; the right one, typed and sent
// with Enter, opens the overview and is kept in a cookie that scripts cannot read,
// sent over HTTPS only and never with a request another site starts; signing out
// forgets it.
func TestConsoleSignIn(t *testing.T) {
	e := mustConsoleEnv(t)
	p := e.mustOpenConsole(t)
	if u := MustEval[string](t, p, `location.pathname`); u != "/dpo/signin" {
		t.Fatalf("without a session /dpo/ shows %s, want the sign-in page", u)
	}

	p.MustType("#token", "cdt_wrong\r")
	p.MustWaitJS("the refusal", `!!document.querySelector('.error')`)
	mustSay(t, p.MustText(), "the sign-in page after a wrong token", "This token is not valid")
	if cookies := p.MustBrowserCookies(e.URL + "/dpo/"); len(cookies) != 0 {
		t.Errorf("a wrong token set cookies: %+v", cookies)
	}

	p.MustSignIn(e.All)
	mustSay(t, p.MustText(), "the overview", fmt.Sprintf("%d decisions", e.total(consoleSites...)))
	cookies := p.MustBrowserCookies(e.URL + "/dpo/")
	if len(cookies) != 1 || !cookies[0].HTTPOnly || !cookies[0].Secure || cookies[0].SameSite != "Strict" || cookies[0].Path != "/dpo" {
		t.Errorf("session cookie %+v, want one, HttpOnly, Secure, SameSite=Strict, for /dpo only", cookies)
	}
	if js := MustEval[string](t, p, `document.cookie`); js != "" {
		t.Errorf("a script reads the cookies %q", js)
	}

	p.MustClick("sign out", `document.querySelector('.signout button')`)
	p.MustWaitJS("the sign-in page after signing out", `location.pathname === '/dpo/signin'`)
	if cookies := p.MustBrowserCookies(e.URL + "/dpo/"); len(cookies) != 0 {
		t.Errorf("after signing out the browser keeps %+v", cookies)
	}
	p.MustGo(e.URL + "/dpo/audit")
	if u := MustEval[string](t, p, `location.pathname`); u != "/dpo/signin" {
		t.Errorf("after signing out /dpo/audit shows %s, want the sign-in page", u)
	}
}

// TestConsolePages: every page of the console with a token for every site: the
// overview's figures and charts drawn from the decisions, the proof of a visitor
// with each receipt verified and the banner they saw, its download verifying with
// the published keys, the export, the audit log of these very calls, the log's
// status as a monitor follows it, and a verification of the whole log followed to
// its end.
func TestConsolePages(t *testing.T) {
	e := mustConsoleEnv(t)
	p := e.mustOpenConsole(t)
	p.MustSignIn(e.All)

	t.Run("overview", func(t *testing.T) {
		text := p.MustText()
		all := e.total(consoleSites...)
		accepted := e.Counts["mixvoip.com"][consent.ActionAcceptAll] + e.Counts["voxbi.com"][consent.ActionAcceptAll]
		mustSay(t, text, "the overview", fmt.Sprintf("%d decisions", all),
			fmt.Sprintf("%.1f %%\nAccept all\n%d", 100*float64(accepted)/float64(all), accepted))
		bars := MustEval[int](t, p, `document.querySelectorAll('#main svg.chart rect').length`)
		if bars == 0 {
			t.Error("the chart of decisions per day has no bar")
		}
		// The table beside each chart holds the chart's numbers: a bar per day and
		// action with decisions.
		cells := MustEval[[]string](t, p, `[...document.querySelectorAll('section:first-of-type ~ section table')[0].querySelectorAll('tbody td')].map((td) => td.textContent)`)
		nonZero := 0
		for _, c := range cells {
			if c != "0" {
				nonZero++
			}
		}
		if nonZero != bars {
			t.Errorf("%d bars, but the table has %d days and actions with decisions", bars, nonZero)
		}
		for _, id := range []string{"categories", "partners"} {
			if n := MustEval[int](t, p, `document.querySelectorAll('svg[aria-labelledby^="`+id+`-t"] path.line').length`); n == 0 {
				t.Errorf("the chart of opt-in rates per %s has no line", id)
			}
		}
		mustSay(t, text, "the partners' chart", "Google Ads", "Meta Pixel")
		mustNotSay(t, text, "the purposes' chart", "Technical") // always on: no rate to chart

		// One site, chosen in the page with the keyboard.
		p.MustType("#site", "v")
		p.MustType("#to", "\r")
		p.MustWaitJS("the overview of voxbi.com", `location.search.includes('site=voxbi.com')`)
		mustSay(t, p.MustText(), "the overview of voxbi.com", fmt.Sprintf("%d decisions on voxbi.com", e.total("voxbi.com")))
	})

	consentID := e.Consents["mixvoip.com"][0]
	t.Run("proof", func(t *testing.T) {
		p.MustGo(e.URL + "/dpo/consents")
		p.MustType("#consent_id", consentID+"\r")
		p.MustWaitJS("the proof", `!!document.querySelector('#records-h')`)
		text := p.MustText()
		mustSay(t, text, "the proof", "2 decisions of consent "+consentID, "Every receipt verifies", "reject_all", "accept_all",
			"Your choice about cookies", "Accept all", "privacy policy version 2021-09-13")
		if n := MustEval[int](t, p, `[...document.querySelectorAll('tbody tr')].filter((tr) => tr.textContent.includes('Verifies')).length`); n != 2 {
			t.Errorf("%d records say their receipt verifies, want 2", n)
		}

		res := p.MustFetch("GET", MustEval[string](t, p, `document.querySelector('a[download]').getAttribute('href')`), "")
		var f struct {
			api.Proof
			PublicKeys *proof.PublicKeys `json:"public_keys"`
			Checkpoint string            `json:"checkpoint"`
		}
		if err := json.Unmarshal([]byte(res.Body), &f); err != nil || res.Status != 200 {
			t.Fatalf("proof download: %d %v\n%.300s", res.Status, err, res.Body)
		}
		published, _, err := e.client(t, "").Keys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(f.PublicKeys.Keys) != len(published.Keys) || f.PublicKeys.Keys[0].Key != published.Keys[0].Key {
			t.Errorf("the proof's keys %+v are not those published at /v1/keys %+v", f.PublicKeys, published)
		}
		verifier, err := f.PublicKeys.Verifier()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range f.Records {
			if _, err := verifier.VerifyReceipt(r.Receipt); err != nil {
				t.Errorf("record %s of the download: %v", r.ID, err)
			}
		}
		if _, err := verifier.Open([]byte(f.Checkpoint)); err != nil || len(f.Snapshots) != 1 {
			t.Errorf("the download's checkpoint: %v; %d snapshots, want 1", err, len(f.Snapshots))
		}

		p.MustGo(e.URL + "/dpo/consents?consent_id=0190a4c2-7f3e-4cc1-9b8e-3f1d2a4b5c6d")
		mustSay(t, p.MustText(), "an unknown consent id", "No decision is recorded for consent id 0190a4c2-7f3e-4cc1-9b8e-3f1d2a4b5c6d")
	})

	t.Run("export", func(t *testing.T) {
		p.MustGo(e.URL + "/dpo/export")
		action := MustEval[string](t, p, `document.querySelector('main form').getAttribute('action')`)
		res := p.MustFetch("GET", action+"?site=voxbi.com&format=csv&action=reject_all", "")
		rows, err := csv.NewReader(strings.NewReader(res.Body)).ReadAll()
		if err != nil || res.Status != 200 || !strings.HasPrefix(res.Type, "text/csv") {
			t.Fatalf("export: %d %s %v\n%.300s", res.Status, res.Type, err, res.Body)
		}
		if want := e.Counts["voxbi.com"][consent.ActionRejectAll] + 1; len(rows) != want {
			t.Errorf("CSV export of voxbi.com's refusals: %d rows, want a header and %d", len(rows), want-1)
		}
		for _, row := range rows[1:] {
			if !strings.Contains(strings.Join(row, ","), "voxbi.com") || !strings.Contains(strings.Join(row, ","), "reject_all") {
				t.Errorf("row %v is not a refusal on voxbi.com", row)
			}
		}
	})

	t.Run("audit", func(t *testing.T) {
		p.MustGo(e.URL + "/dpo/audit")
		text := p.MustText()
		mustSay(t, text, "the audit log", "POST /dpo/signin", "GET /dpo/consents?consent_id={consent_id}", "GET /dpo/export/records?site=voxbi.com", "200 OK")
		mustNotSay(t, text, "the audit log", consentID)
		p.MustGo(e.URL + "/dpo/audit?consent_id=" + consentID)
		if n := MustEval[int](t, p, `document.querySelectorAll('tbody tr').length`); n != 2 {
			t.Errorf("audit of one consent id: %d calls, want the lookup and the download:\n%s", n, p.MustText())
		}
	})

	t.Run("log", func(t *testing.T) {
		p.MustGo(e.URL + "/dpo/log")
		total := e.total(consoleSites...)
		mustSay(t, p.MustText(), "the log page", "Decisions in the log\n"+strconv.Itoa(total), "UTC (", " ago)", "Not verified since this instance of consentd started",
			"No one has asked this instance")
		// What a monitor asks for on each run.
		if _, err := e.client(t, "").Consistency(context.Background(), 2, int64(total)); err != nil {
			t.Fatal(err)
		}
		p.MustGo(e.URL + "/dpo/log")
		mustSay(t, p.MustText(), "the log page once followed", fmt.Sprintf("went from 2 to %d decisions", total))
		p.MustClick("verify now", `[...document.querySelectorAll('button')].find((b) => b.textContent === 'Verify now')`)
		// The page's script follows the verification and shows the page again when
		// it ends.
		p.MustWaitJS("the verification's outcome", `!!document.querySelector('#verify .verdict')`)
		mustSay(t, p.MustText(), "the log page after verifying", "OK, log consent.test/log: "+strconv.Itoa(e.total(consoleSites...))+" leaves", "started by dpo")
	})
}

// TestConsoleScope: a token limited to voxbi.com sees nothing of mixvoip.com in
// the console: not in the site list, the figures, the charts, a proof, an export,
// the audit log; and it cannot start a verification, which covers every site.
func TestConsoleScope(t *testing.T) {
	e := mustConsoleEnv(t)
	admin := e.mustOpenConsole(t)
	admin.MustSignIn(e.All)
	p := e.mustOpenConsole(t)
	p.MustSignIn(e.Voxbi)

	text := p.MustText()
	mustSay(t, text, "the overview of a voxbi.com token", fmt.Sprintf("%d decisions on voxbi.com", e.total("voxbi.com")))
	mustNotSay(t, text, "the overview of a voxbi.com token", "mixvoip", "All sites", "LinkedIn") // LinkedIn is mixvoip.com's partner only
	if opts := MustEval[[]string](t, p, `[...document.querySelectorAll('#site option')].map((o) => o.textContent)`); len(opts) != 1 || opts[0] != "voxbi.com" {
		t.Errorf("sites to choose from: %v, want voxbi.com only", opts)
	}
	mixvoip := e.Consents["mixvoip.com"][0]
	for _, tt := range []struct {
		path   string
		status int
		says   string
	}{
		{"/dpo/?site=mixvoip.com", 403, "no site mixvoip.com"},
		{"/dpo/consents?consent_id=" + mixvoip, 404, "No decision is recorded for consent id " + mixvoip + " on voxbi.com"},
		{"/dpo/consents/" + mixvoip + "/proof.json", 404, "no records"},
		{"/dpo/erase?consent_id=" + mixvoip, 404, "No decision is recorded"},
		{"/dpo/export/records?site=mixvoip.com&format=csv", 403, "may not see site mixvoip.com"},
	} {
		res := p.MustFetch("GET", tt.path, "")
		if res.Status != tt.status || !strings.Contains(res.Body, tt.says) || strings.Contains(res.Body, "user_agent") {
			t.Errorf("GET %s with a voxbi.com token: %d, want %d saying %q:\n%.400s", tt.path, res.Status, tt.status, tt.says, res.Body)
		}
	}
	res := p.MustFetch("GET", "/dpo/export/records?format=csv", "")
	if res.Status != 200 || strings.Contains(res.Body, "mixvoip.com") || strings.Count(res.Body, "\n") != e.total("voxbi.com")+1 {
		t.Errorf("CSV export of every site a voxbi.com token sees: %d, want the %d records of voxbi.com only:\n%.400s", res.Status, e.total("voxbi.com"), res.Body)
	}

	p.MustGo(e.URL + "/dpo/audit")
	text = p.MustText()
	mustSay(t, text, "the audit log of a voxbi.com token", "agency", "GET /dpo/export/records?format=csv")
	mustNotSay(t, text, "the audit log of a voxbi.com token", "\tdpo\t")

	p.MustGo(e.URL + "/dpo/log")
	mustSay(t, p.MustText(), "the log page of a voxbi.com token", "needs a token without a site limit")
	if MustEval[bool](t, p, `!![...document.querySelectorAll('button')].find((b) => b.textContent === 'Verify now')`) {
		t.Error("the log page offers a voxbi.com token to verify the whole log")
	}
	csrf := MustEval[string](t, p, `document.querySelector('input[name=csrf]').value`)
	if res := p.MustFetch("POST", "/dpo/log/verify", "csrf="+csrf); res.Status != 403 || !strings.Contains(res.Body, "without a site limit") {
		t.Errorf("POST /dpo/log/verify with a voxbi.com token: %d:\n%.300s", res.Status, res.Body)
	}
}

// TestConsoleErase: the erasure page says what goes and what stays and erases
// only once the DPO confirms; the proof then lacks what identified the visitor and
// still verifies. A form another site sends, or one without the session's CSRF
// token, erases nothing.
func TestConsoleErase(t *testing.T) {
	e := mustConsoleEnv(t)
	p := e.mustOpenConsole(t)
	p.MustSignIn(e.All)
	c := e.client(t, e.All)
	id := e.Consents["voxbi.com"][0]
	erased := func() bool {
		t.Helper()
		pr, err := c.Proof(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return pr.Records[0].UserAgent == ""
	}

	t.Run("from another site", func(t *testing.T) {
		// A page of another site that sends the erasure form on its own.
		page := `<form method="post" action="` + e.URL + `/dpo/consents/` + id + `/erase"><input name="csrf" value="x"></form><script>document.forms[0].submit()</script>`
		p.MustGo(e.Attacker + "/?page=" + url.QueryEscape(page))
		p.MustWaitJS("the form's answer", `location.host.startsWith('localhost')`)
		if erased() {
			t.Fatal("a form sent from another site erased the records")
		}
	})

	p.MustGo(e.URL + "/dpo/erase")
	p.MustType("#consent_id", id+"\r")
	p.MustWaitJS("the confirmation", `!!document.querySelector('form.confirm')`)
	mustSay(t, p.MustText(), "the confirmation", "Erase 2 records of consent "+id+" on voxbi.com?", consent.ErasureEffect)
	if erased() {
		t.Fatal("erased before the DPO confirmed")
	}

	t.Run("without the CSRF token", func(t *testing.T) {
		res := p.MustFetch("POST", "/dpo/consents/"+id+"/erase", "csrf=")
		if res.Status != 403 || !strings.Contains(res.Body, "not one of this session") || erased() {
			t.Errorf("a same-site form without the CSRF token: %d, erased %t:\n%.300s", res.Status, erased(), res.Body)
		}
	})

	p.MustClick("erase", `document.querySelector('form.confirm button')`)
	p.MustWaitJS("the outcome", `!!document.querySelector('.verdict')`)
	mustSay(t, p.MustText(), "the outcome", "Erased: 2 records of consent "+id)
	if !erased() {
		t.Fatal("the confirmed erasure left the user agent")
	}
	pr, err := c.Proof(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	_, verifier, err := c.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pr.Records {
		if _, err := verifier.VerifyReceipt(r.Receipt); err != nil || r.IPPrefix != "" {
			t.Errorf("erased record %s: receipt %v, IP prefix %q", r.ID, err, r.IPPrefix)
		}
	}
}

// consolePages are the console's pages, for the checks of every page.
func consolePages(e *consoleEnv) map[string]string {
	id := e.Consents["mixvoip.com"][0]
	return map[string]string{
		"overview": "/dpo/", "proof": "/dpo/consents?consent_id=" + id, "export": "/dpo/export",
		"erase": "/dpo/erase?consent_id=" + id, "audit": "/dpo/audit", "log": "/dpo/log",
		"scans": "/dpo/scans", "scan report": "/dpo/scans/" + e.ScanReport,
	}
}

// focusable selects what a keyboard reaches on a console page.
const focusable = `a[href], button:not([disabled]), input:not([type=hidden]), select, summary, [tabindex="0"]`

// consoleFocus is the focused element of a console page.
type consoleFocus struct {
	Index int    `json:"index"` // among the focusable ones; -1 for none
	Desc  string `json:"desc"`
	Ring  bool   `json:"ring"` // an outline of 2 px or more shows it
}

// TestConsoleA11y: axe-core finds nothing on any page of the console, in light
// and dark mode, and the sign-in and every page work by keyboard alone, with the
// focus always visible.
func TestConsoleA11y(t *testing.T) {
	e := mustConsoleEnv(t)
	p := e.mustOpenConsole(t)
	p.MustFocusEmulation()
	p.MustBypassCSP() // axe-core is loaded into the pages
	p.MustReload()
	p.MustInjectAxe()
	MustAxeDocument(t, p, "the sign-in page", false)
	p.MustSignIn(e.All)
	for name, path := range consolePages(e) {
		p.MustGo(e.URL + path)
		p.MustInjectAxe()
		p.MustMedia("light", false)
		MustAxeDocument(t, p, name+" light", false)
		p.MustMedia("dark", false)
		MustAxeDocument(t, p, name+" dark", true)
		p.MustMedia("light", false)

		// Every link, button and field is reached with Tab, its focus visible. A date
		// field takes a Tab per part (day, month, year).
		want := MustEval[int](t, p, `[...document.querySelectorAll(`+jsString(focusable)+`)].filter((el) => el.checkVisibility()).length`)
		seen := map[int]bool{}
		for range 4*want + 4 {
			p.MustPress("\t")
			f := MustEval[consoleFocus](t, p, `(() => {
  const a = document.activeElement, all = [...document.querySelectorAll(`+jsString(focusable)+`)].filter((el) => el.checkVisibility());
  if (!a || a === document.body) return { index: -1, ring: true };
  const cs = getComputedStyle(a);
  return { index: all.indexOf(a), desc: a.outerHTML.slice(0, 80), ring: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2 };
})()`)
			if !f.Ring {
				t.Errorf("%s: keyboard focus on %s is not visible", name, f.Desc)
			}
			seen[f.Index] = true
		}
		delete(seen, -1)
		if len(seen) != want {
			t.Errorf("%s: Tab reached %d elements, want the %d focusable ones", name, len(seen), want)
		}
	}
}

var screenshots = flag.String("console-screenshots", "", "write the console's screenshots (PNG) into this directory, as the README shows them")

// TestConsoleScreenshots takes the README's screenshots of the console: the
// overview in light and dark mode, a proof, the log's status, each a picture of
// the whole page; they go to -console-screenshots (make screenshots) or are thrown
// away.
func TestConsoleScreenshots(t *testing.T) {
	e := mustConsoleEnv(t)
	dir := *screenshots
	if dir == "" {
		dir = t.TempDir()
	}
	p := e.mustOpenConsole(t)
	p.MustViewport(desktop)
	p.MustSignIn(e.All)
	for _, shot := range []struct {
		name, path string
		scheme     Scheme
	}{
		{"console-overview", "/dpo/", "light"},
		{"console-overview-dark", "/dpo/", "dark"},
		{"console-proof", consolePages(e)["proof"], "light"},
		{"console-log", "/dpo/log", "light"},
	} {
		p.MustMedia(shot.scheme, false)
		p.MustGo(e.URL + shot.path)
		png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s: %v", shot.name, err)
		}
		img, err := pngpkg.DecodeConfig(bytes.NewReader(png))
		// The page's width, less the scroll bar's.
		if err != nil || int64(img.Width) > desktop.Width || int64(img.Width) < desktop.Width-20 || img.Height < 400 {
			t.Errorf("%s: a PNG of %dx%d (%v), want the page, %d wide", shot.name, img.Width, img.Height, err, desktop.Width)
		}
		if err := os.WriteFile(filepath.Join(dir, shot.name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
