package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/client"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/scan"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
)

// consoleEnv is a consentd with two sites' decisions over two weeks, and the DPO
// console at http://localhost:PORT/dpo/ (browsers keep Secure cookies of
// localhost without HTTPS). Another site's page (attackerHost) is served too, for
// forms sent from elsewhere.
type consoleEnv struct {
	URL      string // the console's origin
	Attacker string // another site's origin
	Config   *config.Config
	Server   *server.Server
	Store    *bolt.Store
	// All and Voxbi are token secrets: for every site, and for voxbi.com only.
	All, Voxbi string
	// Consents are consent ids with decisions, by site: the first refused, then
	// accepted.
	Consents map[string][]string
	// Counts are the decisions posted, by site and action.
	Counts map[string]map[consent.Action]int
	Days   int // the days with decisions, today the last
	// ScanReport names the report of a scan the console shows.
	ScanReport string

	scans *scan.Dir
	clock atomic.Pointer[time.Time] // the server's time while decisions are posted; nil: now
}

const (
	attackerHost = "www.mixvoip.com"
	consoleDays  = 14
)

var consoleSites = []string{"mixvoip.com", "voxbi.com"}

// mustConsoleEnv starts a consoleEnv for tb, stopped when tb ends.
func mustConsoleEnv(tb testing.TB) *consoleEnv {
	tb.Helper()
	e := &consoleEnv{Consents: map[string][]string{}, Counts: map[string]map[consent.Action]int{}, Days: consoleDays, scans: scan.NewDir(tb.TempDir())}
	cfg, err := config.Load(sitesFile)
	if err != nil {
		tb.Fatal(err)
	}
	sites := map[string]*consent.Site{}
	for _, key := range consoleSites {
		sites[key] = cfg.Sites[key]
	}
	cfg.Sites = sites
	e.Config = cfg
	keys, err := proof.NewEphemeralKeyring()
	if err != nil {
		tb.Fatal(err)
	}
	const origin = "consent.test/log"
	if e.Store, err = bolt.Open(filepath.Join(tb.TempDir(), "consents.db"), bolt.Log(origin, keys)); err != nil {
		tb.Fatal(err)
	}
	if e.ScanReport, err = e.scans.Save(sampleScan(cfg)); err != nil {
		tb.Fatal(err)
	}
	e.Server = server.New(e.Store, server.Options{Keys: keys, Origin: origin, Now: e.now, Scans: e.scans,
		Logger: slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := e.Server.Load(cfg); err != nil {
		tb.Fatal(err)
	}
	ts := &auth.Tokens{}
	if e.All, err = ts.Add("dpo", nil, time.Now()); err != nil {
		tb.Fatal(err)
	}
	if e.Voxbi, err = ts.Add("agency", []string{"voxbi.com"}, time.Now()); err != nil {
		tb.Fatal(err)
	}
	e.Server.SetTokens(ts)

	srv := httptest.NewServer(http.HandlerFunc(e.serve))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	e.URL, e.Attacker = "http://localhost:"+port, "http://"+attackerHost+":"+port
	tb.Cleanup(func() {
		srv.Close()
		if err := e.Server.Close(); err != nil {
			tb.Errorf("close server: %v", err)
		}
		if err := e.Store.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	e.mustPostDecisions(tb)
	return e
}

func (e *consoleEnv) now() time.Time {
	if t := e.clock.Load(); t != nil {
		return *t
	}
	return time.Now()
}

// serve answers the console's host with consentd, and another site's host with
// attackerPage.
func (e *consoleEnv) serve(w http.ResponseWriter, r *http.Request) {
	if host, _, _ := net.SplitHostPort(r.Host); host == attackerHost {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, r.URL.Query().Get("page"))
		return
	}
	e.Server.ServeHTTP(w, r)
}

// mustPostDecisions posts, on each day of the last Days and each site, decisions
// of every action in proportions that differ by site and day, and on the first
// day a refusal then a consent of the same visitor.
func (e *consoleEnv) mustPostDecisions(tb testing.TB) {
	tb.Helper()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	defer e.clock.Store(nil)
	for d := range e.Days {
		at := today.AddDate(0, 0, d-e.Days+1).Add(10 * time.Hour)
		e.clock.Store(&at)
		for s, site := range consoleSites {
			if e.Counts[site] == nil {
				e.Counts[site] = map[consent.Action]int{}
			}
			actions := []consent.Action{consent.ActionAcceptAll, consent.ActionRejectAll}
			for range (d + s) % 3 {
				actions = append(actions, consent.ActionAcceptAll)
			}
			if d%2 == 0 {
				actions = append(actions, consent.ActionCustom, consent.ActionGPC)
			}
			if d%5 == 1 {
				actions = append(actions, consent.ActionWithdraw)
			}
			for _, a := range actions {
				id := uuid.NewString()
				e.mustPost(tb, site, a, id)
				if d == 0 && a == consent.ActionRejectAll {
					at := at.Add(time.Hour)
					e.clock.Store(&at)
					e.mustPost(tb, site, consent.ActionAcceptAll, id)
					e.Consents[site] = append(e.Consents[site], id)
				}
			}
		}
	}
}

// mustPost records a decision of action on site by consent id, as the banner
// posts it.
func (e *consoleEnv) mustPost(tb testing.TB, site string, action consent.Action, id string) {
	tb.Helper()
	st := e.Config.Sites[site]
	choices := st.AllChoices(action == consent.ActionAcceptAll || action == consent.ActionCustom)
	if action == consent.ActionCustom {
		// Advertising on, without its first partner.
		choices.Partners[slices.Sorted(maps.Keys(choices.Partners))[0]] = false
	}
	body, _ := json.Marshal(map[string]any{
		"site": site, "consent_id": id, "action": action, "fingerprint": banner.Fingerprint(st), "choices": choices,
		"language": st.Languages[0], "url": st.Origins[0] + "/", "surface": "banner", "gpc": action == consent.ActionGPC,
	})
	req := httptest.NewRequest(http.MethodPost, "/v1/consents", bytes.NewReader(body))
	req.Header.Set("Origin", st.Origins[0])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "e2e visitor")
	rec := httptest.NewRecorder()
	e.Server.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		tb.Fatalf("post %s %s: %d %s", site, action, rec.Code, rec.Body)
	}
	e.Counts[site][action]++
}

// total returns the decisions posted on sites.
func (e *consoleEnv) total(sites ...string) int {
	n := 0
	for _, s := range sites {
		for _, c := range e.Counts[s] {
			n += c
		}
	}
	return n
}

// client returns a client of the DPO API with the token secret.
func (e *consoleEnv) client(tb testing.TB, secret string) *client.Client {
	tb.Helper()
	c, err := client.New(e.URL, secret)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// mustOpenConsole opens a tab on the console's sign-in page.
func (e *consoleEnv) mustOpenConsole(tb testing.TB) *Page {
	tb.Helper()
	p := MustOpenTab(tb, "the console")
	p.MustGo(e.URL + "/dpo/")
	return p
}

// MustGo opens the address u in the tab and waits for its load event.
func (p *Page) MustGo(u string) {
	p.tb.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Navigate(u)); err != nil {
		p.tb.Fatalf("navigate to %s: %v", u, err)
	}
}

// MustSignIn signs in on the sign-in page p shows, with the keyboard, and waits for
// the overview.
func (p *Page) MustSignIn(secret string) {
	p.tb.Helper()
	p.MustWaitJS("the sign-in form", `!!document.querySelector('#token')`)
	p.MustType("#token", secret+"\r")
	p.MustWaitJS("the overview after signing in", `document.title.startsWith('Overview')`)
}

// MustType focuses the element at selector and types text, as keys; "\r" is Enter.
func (p *Page) MustType(selector, text string) {
	p.tb.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Focus(chromedp.CSS(selector)), chromedp.SendKeys(chromedp.CSS(selector), text)); err != nil {
		p.tb.Fatalf("type into %s: %v", selector, err)
	}
}

// MustText returns the text of the page's main content.
func (p *Page) MustText() string {
	p.tb.Helper()
	return MustEval[string](p.tb, p, `document.querySelector('main') ? document.querySelector('main').innerText : document.body.innerText`)
}

// mustSay fails tb unless text holds every one of parts.
func mustSay(tb testing.TB, text, where string, parts ...string) {
	tb.Helper()
	for _, part := range parts {
		if !strings.Contains(text, part) {
			tb.Errorf("%s does not say %q:\n%s", where, part, text)
		}
	}
}

// mustNotSay fails tb if text holds any of parts.
func mustNotSay(tb testing.TB, text, where string, parts ...string) {
	tb.Helper()
	for _, part := range parts {
		if strings.Contains(text, part) {
			tb.Errorf("%s says %q:\n%s", where, part, text)
		}
	}
}

// fetchResult is a fetch made from the page, with the page's cookies.
type fetchResult struct {
	Status int    `json:"status"`
	Type   string `json:"type"`
	Body   string `json:"body"`
	URL    string `json:"url"`
}

// MustFetch fetches path from the page, as its own scripts could, and returns the
// answer.
func (p *Page) MustFetch(method, path, form string) fetchResult {
	p.tb.Helper()
	expr := fmt.Sprintf(`fetch(%s, { method: %s, credentials: 'same-origin', redirect: 'follow', %s })
  .then(async (r) => ({ status: r.status, type: r.headers.get('content-type') || '', body: await r.text(), url: r.url }))`,
		jsString(path), jsString(method), formBody(form))
	res, err := chromedp.Run(p.ctx, chromedp.Evaluate[fetchResult](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.tb.Fatalf("fetch %s %s: %v", method, path, err)
	}
	return res
}

func formBody(form string) string {
	if form == "" {
		return ""
	}
	return `headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: ` + jsString(form)
}

// sampleScan returns the report of a scan of the console's sites in which
// mixvoip.com set a Google cookie before any choice and loaded Google's tag after
// "Accept all", for the console's pages of scans.
func sampleScan(cfg *config.Config) *scan.Report {
	at := time.Now().UTC().Truncate(time.Second)
	r := &scan.Report{Started: at, Finished: at.Add(time.Minute), Version: "test", Config: sitesFile,
		Limits: scan.Limits{Pages: 10, Time: scan.Seconds(15 * time.Minute), Quiet: scan.Seconds(1500 * time.Millisecond)}}
	for _, key := range consoleSites {
		page := "https://" + key + "/"
		gcl := scan.Cookie{Name: "_gcl_au", Domain: "." + key, Path: "/", Expires: at.Add(90 * 24 * time.Hour)}
		visits := []scan.Visit{
			{Page: page, State: scan.NoChoice, At: at, Loaded: true, Banner: true, Cookies: []scan.Cookie{gcl}},
			{Page: page, State: scan.Rejected, At: at, Loaded: true, Banner: true},
			{Page: page, State: scan.Accepted, At: at, Loaded: true, Banner: true, Cookies: []scan.Cookie{gcl}, Requests: []scan.Request{
				{URL: "https://www.googletagmanager.com/gtag/js?id=AW-1", Host: "www.googletagmanager.com", Type: "Script", Status: 200},
			}},
		}
		if key != "mixvoip.com" {
			visits[0].Cookies = nil
		}
		r.Sites = append(r.Sites, scan.Analyze(cfg.Sites[key], []string{page}, visits))
	}
	return r
}
