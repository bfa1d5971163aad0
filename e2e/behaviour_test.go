package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
)

// shipped is sites.yaml as loaded once, to choose the sites a test runs on.
var shipped = sync.OnceValues(func() (*config.Config, error) { return config.Load(sitesFile) })

// sitesWhere returns the keys of the shipped sites for which keep holds.
func sitesWhere(t *testing.T, keep func(*consent.Site) bool) []string {
	t.Helper()
	cfg, err := shipped()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, key := range cfg.SiteKeys() {
		if keep(cfg.Sites[key]) {
			out = append(out, key)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no site of %s fits this test", sitesFile)
	}
	return out
}

// forSites runs f as a parallel subtest per site, each with its own Env and browser
// context; forEachSite for a chosen set of sites.
func forSites(t *testing.T, sites []string, f func(t *testing.T, env *Env, site string)) {
	t.Helper()
	MustBrowser(t)
	t.Parallel()
	for _, site := range sites {
		t.Run(site, func(t *testing.T) {
			t.Parallel()
			f(t, MustEnv(t, site), site)
		})
	}
}

// openSettings opens the second layer with the footer's "Cookie settings" link.
func openSettings(p *Page) {
	p.tb.Helper()
	p.MustClick(`the footer's "Cookie settings" link`, `document.querySelector('a[data-consent-open]')`)
	p.MustDialogOpen()
}

// postsSince counts the POST /v1/consents that reached the backend after mark.
func postsSince(env *Env, mark int) int {
	n := 0
	for _, r := range env.Requests.Backend(mark) {
		if r == "POST /v1/consents" {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------------------
// 1. Google Consent Mode v2

// layerEntry is one entry of window.dataLayer: whether it is an arguments object
// (what gtag() pushes), and its value (the arguments as a list).
type layerEntry struct {
	Args bool `json:"args"`
	V    any  `json:"v"`
}

type dataLayer []layerEntry

const readDataLayer = `(window.dataLayer || []).map((x) => {
  const args = Object.prototype.toString.call(x) === '[object Arguments]';
  const v = args ? Array.from(x) : x;
  return { args, v: v === undefined ? null : JSON.parse(JSON.stringify(v)) };
})`

var (
	consentDefault = []any{"consent", "default", map[string]any{
		"ad_storage": "denied", "ad_user_data": "denied", "ad_personalization": "denied",
		"analytics_storage": "denied", "wait_for_update": 500.0,
	}}
	consentGranted = []any{"consent", "update", map[string]any{
		"ad_storage": "granted", "ad_user_data": "granted", "ad_personalization": "granted",
	}}
)

// index returns the first entry for which f holds, or -1.
func (l dataLayer) index(f func(layerEntry) bool) int {
	return slices.IndexFunc(l, f)
}

func (l dataLayer) command(want []any) int {
	return l.index(func(e layerEntry) bool { return e.Args && reflect.DeepEqual(e.V, want) })
}

// marker is where the fake tag of host ran (partnerTagJS pushes the marker).
func (l dataLayer) marker(host string) int {
	return l.index(func(e layerEntry) bool {
		m, ok := e.V.(map[string]any)
		return ok && m["event"] == "tag-loaded:"+host
	})
}

// firstGoogleCommand is the first gtag command that is not about consent
// ('js', 'config', 'event', 'set'): those depend on the consent state.
func (l dataLayer) firstGoogleCommand() int {
	return l.index(func(e layerEntry) bool {
		v, ok := e.V.([]any)
		return e.Args && ok && len(v) > 0 && v[0] != "consent"
	})
}

func (l dataLayer) mentions(word string) bool {
	b, _ := json.Marshal(l)
	return strings.Contains(string(b), word)
}

func (l dataLayer) String() string {
	var lines []string
	for i, e := range l {
		b, _ := json.Marshal(e.V)
		kind := "object"
		if e.Args {
			kind = "arguments"
		}
		lines = append(lines, fmt.Sprintf("  [%d] %s %s", i, kind, b))
	}
	return "\n" + strings.Join(lines, "\n")
}

func mustDataLayer(tb testing.TB, p *Page) dataLayer {
	tb.Helper()
	return MustEval[dataLayer](tb, p, readDataLayer)
}

// googleTagHosts returns the tag hosts of the site's enabled Consent Mode partners.
func googleTagHosts(cfg *config.Config, site string) []string {
	var ids []string
	for _, p := range cfg.Sites[site].Partners {
		if p.Enabled && p.ConsentMode {
			ids = append(ids, p.ID)
		}
	}
	return keys(TagHosts(cfg, site, ids))
}

// mustDefaultFirst checks that the denied defaults are the page's first dataLayer
// entry, as an arguments object, and pushed once.
func mustDefaultFirst(tb testing.TB, when string, l dataLayer) {
	tb.Helper()
	if len(l) == 0 || !l[0].Args || !reflect.DeepEqual(l[0].V, consentDefault) {
		tb.Errorf("%s: dataLayer[0] must be the arguments of gtag('consent', 'default', {all denied, wait_for_update: 500}); dataLayer is:%s", when, l)
	}
	n := 0
	for _, e := range l {
		if e.Args && reflect.DeepEqual(e.V, consentDefault) {
			n++
		}
	}
	if n > 1 {
		tb.Errorf("%s: the consent defaults were pushed %d times:%s", when, n, l)
	}
}

// mustGrantedBeforeTags checks that the granted update is in the dataLayer after the
// defaults and before every Google tag ran and every gtag command that depends on it,
// and that nothing takes it back.
func mustGrantedBeforeTags(tb testing.TB, when string, l dataLayer, hosts []string) {
	tb.Helper()
	upd := l.command(consentGranted)
	if upd < 0 {
		tb.Errorf("%s: no gtag('consent', 'update', {ad_storage, ad_user_data, ad_personalization: 'granted'}) arguments entry in dataLayer:%s", when, l)
		return
	}
	if def := l.command(consentDefault); def < 0 || def > upd {
		tb.Errorf("%s: the update (at %d) is not preceded by the defaults (at %d):%s", when, upd, def, l)
	}
	for _, h := range hosts {
		if m := l.marker(h); m < 0 {
			tb.Errorf("%s: the tag of %s did not run:%s", when, h, l)
		} else if m < upd {
			tb.Errorf("%s: the tag of %s ran (dataLayer length %d) before the granted update (at %d):%s", when, h, m, upd, l)
		}
	}
	if c := l.firstGoogleCommand(); c >= 0 && c < upd {
		tb.Errorf("%s: gtag command at %d runs before the granted update at %d:%s", when, c, upd, l)
	}
	for i := upd + 1; i < len(l); i++ {
		if v, ok := l[i].V.([]any); ok && len(v) > 2 && v[0] == "consent" && v[1] == "update" && (dataLayer{l[i]}).mentions("denied") {
			tb.Errorf("%s: a consent update at %d takes the grant back:%s", when, i, l)
		}
	}
}

// TestConsentModeOrder: with a Google Consent Mode partner, the denied defaults are
// the first dataLayer entry before any Google tag; "Accept all" pushes the granted
// update before the Google tag runs, and so does every later page view; after
// "Reject all" nothing is ever granted.
func TestConsentModeOrder(t *testing.T) {
	sites := sitesWhere(t, func(s *consent.Site) bool {
		return slices.ContainsFunc(s.Partners, func(p consent.Partner) bool { return p.Enabled && p.ConsentMode })
	})
	forSites(t, sites, func(t *testing.T, env *Env, site string) {
		hosts := googleTagHosts(env.Config, site)
		all := TagHosts(env.Config, site, EnabledPartners(env.Config, site))
		ran := func(l dataLayer) bool {
			for _, h := range hosts {
				if l.marker(h) < 0 {
					return false
				}
			}
			return true
		}
		waitTags := func(p *Page, when string) dataLayer {
			var l dataLayer
			MustEventually(t, when+": the Google tags ran", func() (bool, string) {
				l = mustDataLayer(t, p)
				return ran(l), l.String()
			})
			return l
		}

		t.Run("accept", func(t *testing.T) {
			p := MustOpenPage(t, env, site)
			mark := env.Requests.Mark()
			p.MustNavigate()
			p.MustBannerVisible()
			l := mustDataLayer(t, p)
			mustDefaultFirst(t, "first visit", l)
			if l.mentions("granted") {
				t.Errorf("first visit: something is granted before any decision:%s", l)
			}
			p.MustNoPartnerRequest(mark, "first visit")

			mark = env.Requests.Mark()
			p.MustClick(`"Accept all"`, `layer1('accept-all')`)
			p.MustPartnerHosts(mark, all)
			l = waitTags(p, "after Accept all")
			mustDefaultFirst(t, "after Accept all", l)
			mustGrantedBeforeTags(t, "after Accept all", l, hosts)

			mark = env.Requests.Mark()
			p.MustReload()
			p.MustReady()
			p.MustPartnerHosts(mark, all)
			l = waitTags(p, "reload with the grant stored")
			mustDefaultFirst(t, "reload with the grant stored", l)
			mustGrantedBeforeTags(t, "reload with the grant stored", l, hosts)
		})

		// The refusal path does not depend on the site's partners: one site is enough.
		if site != sites[0] {
			return
		}
		t.Run("reject", func(t *testing.T) {
			p := MustOpenPage(t, env, site)
			mark := env.Requests.Mark()
			p.MustNavigate()
			p.MustBannerVisible()
			MustRejectAll(t, p)
			l := mustDataLayer(t, p)
			mustDefaultFirst(t, "after Reject all", l)
			if l.mentions("granted") {
				t.Errorf("after Reject all: something is granted:%s", l)
			}
			p.MustReload()
			p.MustReady()
			l = mustDataLayer(t, p)
			mustDefaultFirst(t, "reload with the refusal stored", l)
			if l.mentions("granted") {
				t.Errorf("reload with the refusal stored: something is granted:%s", l)
			}
			p.MustNoPartnerRequest(mark, "with the refusal")
		})
	})
}

// ---------------------------------------------------------------------------
// 2. Global Privacy Control

// gpcScript makes the browser send the GPC signal to scripts, as a browser with GPC
// switched on does.
const gpcScript = `Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true, configurable: true, enumerable: true });`

// TestGPC: a browser with Global Privacy Control refuses advertising without a banner,
// recorded once as action gpc; an explicit "Accept all" afterwards wins, also on
// later page views.
func TestGPC(t *testing.T) {
	forSites(t, []string{"mixvoip.org", "voxbi.com"}, func(t *testing.T, env *Env, site string) {
		enabled := EnabledPartners(env.Config, site)
		p := MustOpenPage(t, env, site)
		p.MustInitScript(gpcScript)
		mark := env.Requests.Mark()
		p.MustNavigate()
		p.MustReady()
		p.MustBannerHidden()
		if MustEval[bool](t, p, `!!layer1('accept-all')`) {
			t.Error("with GPC the first layer was rendered")
		}

		s := p.MustCookie(nil)
		MustStoredChoices(t, p, s, map[string]bool{"technical": true, "advertising": false}, allPartners(enabled, false))
		recs := env.MustRecords(t, s.ID, 1)
		MustRecord(t, p, recs[0], consent.ActionGPC, consent.SurfaceBrowser, s.Fingerprint, map[string]bool{"advertising": false}, allPartners(enabled, false))
		if !recs[0].GPC {
			t.Error("the gpc record does not carry the GPC signal")
		}
		if n := postsSince(env, mark); n != 1 {
			t.Errorf("first visit with GPC sent %d POSTs, want exactly 1", n)
		}
		p.MustNoPartnerRequest(mark, "first visit with GPC")

		mark = env.Requests.Mark()
		p.MustReload()
		p.MustReady()
		p.MustBannerHidden()
		p.MustNoBackendPost(mark)
		p.MustNoPartnerRequest(mark, "reload with GPC")
		env.MustRecords(t, s.ID, 1)

		// The visitor's own choice wins over the browser's signal.
		mark = env.Requests.Mark()
		openSettings(p)
		p.MustClick(`"Accept all" in the preferences`, `inDialog('[data-action="accept-all"]')`)
		want := TagHosts(env.Config, site, enabled)
		p.MustPartnerHosts(mark, want)
		grant := p.MustCookie(func(s Stored) bool { return s.Categories["advertising"] })
		MustStoredChoices(t, p, grant, map[string]bool{"technical": true, "advertising": true}, allPartners(enabled, true))
		recs = env.MustRecords(t, s.ID, 2)
		MustRecord(t, p, recs[1], consent.ActionAcceptAll, consent.SurfacePreferences, grant.Fingerprint, map[string]bool{"advertising": true}, allPartners(enabled, true))

		mark = env.Requests.Mark()
		p.MustReload()
		p.MustReady()
		p.MustPartnerHosts(mark, want)
		p.MustBannerHidden()
		p.MustNoBackendPost(mark)
		env.MustRecords(t, s.ID, 2)
	})
}

// ---------------------------------------------------------------------------
// 3. Lifetimes and expiry

// mustLifetime checks that c expires about lifetime from now (±1 day).
func mustLifetime(tb testing.TB, what string, c *network.Cookie, lifetime time.Duration) {
	tb.Helper()
	if c.Session || c.Expires <= 0 {
		tb.Errorf("%s: cookie %s is a session cookie, want one kept for %v", what, c.Name, lifetime)
		return
	}
	got := time.Unix(int64(c.Expires), 0)
	want := time.Now().Add(lifetime)
	if d := got.Sub(want); math.Abs(d.Hours()) > 24 {
		tb.Errorf("%s: cookie %s expires %s, want about %s (now + %.0f days); off by %.1f days",
			what, c.Name, got.UTC().Format(time.RFC3339), want.UTC().Format(time.RFC3339), lifetime.Hours()/24, d.Hours()/24)
	}
}

// mustRecordLifetime checks the record's expiry against the lifetime (±1 day).
func mustRecordLifetime(tb testing.TB, r *consent.Record, lifetime time.Duration) {
	tb.Helper()
	if d := r.ExpiresAt.Sub(r.RecordedAt) - lifetime; math.Abs(d.Hours()) > 24 {
		tb.Errorf("record %s expires %s after it was recorded, want %.0f days", r.Action, r.ExpiresAt.Sub(r.RecordedAt), lifetime.Hours()/24)
	}
}

// TestLifetimes: a refusal is kept for the refusal lifetime and not asked again; a
// consent for the consent lifetime; once the cookie is gone the banner asks again and
// nothing loads.
func TestLifetimes(t *testing.T) {
	MustBrowser(t)
	t.Parallel()
	day := 24 * time.Hour
	cases := []struct {
		name, site       string
		consent, refusal time.Duration // 0: as in sites.yaml
		expire           string        // "past": expiry set in the past; "delete": cookie deleted
	}{
		{name: "sites.yaml", site: "mixvoip.com", expire: "past"},
		{name: "consent 390 days, refusal 30 days", site: "voxbi.team", consent: 390 * day, refusal: 30 * day, expire: "delete"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := MustEnv(t, tc.site)
			consentLife, refusalLife := env.Config.Sites[tc.site].Cookie.ConsentLifetime, env.Config.Sites[tc.site].Cookie.RefusalLifetime
			if tc.consent != 0 {
				consentLife, refusalLife = tc.consent, tc.refusal
				if err := env.Server.Load(env.WithLifetimes(tc.site, tc.consent, tc.refusal)); err != nil {
					t.Fatal(err)
				}
			}
			enabled := EnabledPartners(env.Config, tc.site)
			p := MustOpenPage(t, env, tc.site)
			p.MustNavigate()
			p.MustBannerVisible()
			refusal := MustRejectAll(t, p)
			mustLifetime(t, "after Reject all", refusal.Cookie, refusalLife)
			mustRecordLifetime(t, env.MustRecords(t, refusal.ID, 1)[0], refusalLife)

			// A refusal is not asked again.
			mark := env.Requests.Mark()
			p.MustReload()
			p.MustReady()
			p.MustBannerHidden()
			p.MustNoBackendPost(mark)

			openSettings(p)
			p.MustClick(`"Accept all" in the preferences`, `inDialog('[data-action="accept-all"]')`)
			// Recorded: the banner writes the cookie once more to clear the pending flag,
			// and that write must not come after the expiry below.
			grant := p.MustCookie(func(s Stored) bool { return s.Categories["advertising"] })
			mustLifetime(t, "after Accept all", grant.Cookie, consentLife)
			mustRecordLifetime(t, env.MustRecords(t, grant.ID, 2)[1], consentLife)
			p.MustPartnerHosts(mark, TagHosts(env.Config, tc.site, enabled))

			c := grant.Cookie
			switch tc.expire {
			case "past":
				p.MustSetCookie(network.SetCookieParams{
					Name: c.Name, Value: c.Value, Domain: c.Domain, Path: c.Path, SameSite: c.SameSite,
					Expires: cdp.TimeSinceEpoch(time.Now().Add(-time.Hour).Unix()),
				})
			case "delete":
				p.MustDeleteCookie(c.Name, c.Domain, c.Path)
			}
			for _, bc := range p.MustBrowserCookies(p.Env.PageURL(tc.site)) {
				if bc.Name == c.Name {
					t.Fatalf("the consent cookie is still there after it expired: %+v", bc)
				}
			}

			mark = env.Requests.Mark()
			p.MustReload()
			p.MustBannerVisible()
			p.MustNoPartnerRequest(mark, "after the consent cookie expired")
			p.MustNoBackendPost(mark)
			if dom := p.MustDOM(); len(dom.PartnerScripts) > 0 || dom.AdSnippetRuns != 0 {
				t.Errorf("after the consent cookie expired the page ran optional code: %+v", dom)
			}
			if !MustEval[bool](t, p, `window.consent.get() === null`) {
				t.Error("after the consent cookie expired window.consent.get() is not null")
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 4. Withdrawal

// cookiePlace is one stored cookie: name, domain (host-only without a dot), path.
type cookiePlace struct{ Name, Domain, Path string }

func (c cookiePlace) String() string { return c.Name + "@" + c.Domain + c.Path }

// partnerCookiePlaces returns where the fake tags of the partners set their declared
// cookies on a page at DeepPath: host-only and on the registrable domain, with path
// "/" and DeepPath.
func partnerCookiePlaces(env *Env, site string, partners []string) map[cookiePlace]bool {
	s := env.Config.Sites[site]
	places := map[cookiePlace]bool{}
	for _, id := range partners {
		if len(TagHosts(env.Config, site, []string{id})) == 0 {
			continue // no script: nothing sets cookies in the page
		}
		for _, name := range DeclaredCookies(s.Partner(id)) {
			for _, dom := range []string{"www." + site, "." + s.Cookie.Domain} {
				for _, path := range []string{"/", DeepPath} {
					places[cookiePlace{name, dom, path}] = true
				}
			}
		}
	}
	return places
}

// storedPlaces returns which of want the browser holds, for every URL of the site
// where a page can live.
func storedPlaces(p *Page, site string, want map[cookiePlace]bool) map[cookiePlace]bool {
	urls := []string{
		p.Env.Origin(site) + "/", p.Env.Origin(site) + DeepPath,
		"http://" + site + ":" + p.Env.Port + "/", "http://" + site + ":" + p.Env.Port + DeepPath,
	}
	got := map[cookiePlace]bool{}
	for _, c := range p.MustBrowserCookies(urls...) {
		if pl := (cookiePlace{c.Name, c.Domain, c.Path}); want[pl] {
			got[pl] = true
		}
	}
	return got
}

func placeList(m map[cookiePlace]bool) []string {
	var out []string
	for pl := range m {
		out = append(out, pl.String())
	}
	sort.Strings(out)
	return out
}

// TestWithdrawal: on a page deep in the site, "Accept all" lets the partners set
// their cookies; switching advertising off in the preferences is recorded as a
// withdrawal, reloads the page, deletes every declared cookie of the revoked partners
// wherever the page could reach it, and no partner tag loads any more.
func TestWithdrawal(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		enabled := EnabledPartners(env.Config, site)
		places := partnerCookiePlaces(env, site, enabled)
		deepURL := env.Origin(site) + DeepPath

		p := MustOpenPage(t, env, site)
		mark := env.Requests.Mark()
		p.MustNavigatePath(DeepPath)
		p.MustBannerVisible()
		p.MustClick(`"Accept all"`, `layer1('accept-all')`)
		p.MustPartnerHosts(mark, TagHosts(env.Config, site, enabled))
		grant := p.MustCookie(nil)
		env.MustRecords(t, grant.ID, 1)
		MustEventually(t, "the partners' tags set their cookies", func() (bool, string) {
			got := storedPlaces(p, site, places)
			return len(got) == len(places), fmt.Sprintf("%d of %d: %v", len(got), len(places), placeList(got))
		})
		storage := []string{}
		for _, id := range enabled {
			storage = append(storage, DeclaredStorage(p.Site.Partner(id))...)
		}
		keys, _ := json.Marshal(storage)
		storedKeys := `[localStorage, sessionStorage].flatMap((s) => ` + string(keys) + `.filter((k) => s.getItem(k) != null))`
		p.MustWaitJS("the partners' tags filled their storage", storedKeys+`.length === `+strconv.Itoa(2*len(storage)))
		if !p.Site.FloatingButton && MustEval[bool](t, p, `!!(root() && root().querySelector('[data-action="open"]'))`) {
			t.Error("a floating settings button is shown, but sites.yaml does not ask for one")
		}

		openSettings(p)
		p.MustClick("the advertising toggle", `inDialog('input[data-category="advertising"]')`)
		p.MustWaitJS("the advertising toggle is off", `!inDialog('input[data-category="advertising"]').checked`)
		p.MustMarkDocument()
		mark = env.Requests.Mark()
		p.MustClick(`"Save"`, `inDialog('[data-action="save"]')`)

		recs := env.MustRecords(t, grant.ID, 2)
		MustRecordAt(t, p, recs[1], deepURL, consent.ActionWithdraw, consent.SurfacePreferences, grant.Fingerprint, map[string]bool{"advertising": false}, allPartners(enabled, false))
		p.MustWaitNewDocument("the page reloads after the withdrawal")
		p.MustReady()
		p.MustBannerHidden()
		refusal := p.MustCookie(nil)
		MustStoredChoices(t, p, refusal, map[string]bool{"technical": true, "advertising": false}, allPartners(enabled, false))

		if left := storedPlaces(p, site, places); len(left) > 0 {
			t.Errorf("after the withdrawal %d of %d partner cookies are left (name@domain+path): %v", len(left), len(places), placeList(left))
		}
		if left := MustEval[[]string](t, p, storedKeys); len(left) > 0 {
			t.Errorf("after the withdrawal the partners' storage keeps %q", left)
		}
		p.MustNoPartnerRequest(mark, "after the withdrawal")
		if dom := p.MustDOM(); len(dom.PartnerScripts) > 0 || dom.AdSnippetRuns != 0 {
			t.Errorf("after the withdrawal the page ran optional code: %+v", dom)
		}
	})
}

// TestFloatingButton: a site with floating_button keeps a "Cookie settings" button
// after a decision, also on later page views, and a real click on it opens the
// preferences.
func TestFloatingButton(t *testing.T) {
	forSites(t, sitesWhere(t, func(s *consent.Site) bool { return s.FloatingButton }), func(t *testing.T, env *Env, site string) {
		const fab = `root() && root().querySelector('[data-action="open"]')`
		p := MustOpenPage(t, env, site)
		p.MustNavigate()
		p.MustBannerVisible()
		MustRejectAll(t, p)
		p.MustClick("the floating settings button", fab)
		p.MustDialogOpen()

		p.MustReload()
		p.MustReady()
		p.MustClick("the floating settings button after a reload", fab)
		p.MustDialogOpen()
	})
}

// ---------------------------------------------------------------------------
// 5. Backend down, cookies blocked

// cookieFields are the consent cookie's fields that Stored knows; another field with
// a value is taken for the banner's "not sent yet" flag.
var cookieFields = map[string]bool{"i": true, "f": true, "h": true, "c": true, "p": true, "t": true, "u": true}

// pendingFlags returns the fields of the raw cookie that are not part of the decision
// and are set (not false, 0, null or "").
func pendingFlags(raw map[string]json.RawMessage) []string {
	var out []string
	for k, v := range raw {
		if s := string(v); !cookieFields[k] && s != "false" && s != "0" && s != "null" && s != `""` {
			out = append(out, k+"="+s)
		}
	}
	sort.Strings(out)
	return out
}

func rawString(raw map[string]json.RawMessage) string {
	b, _ := json.Marshal(raw)
	return string(b)
}

// TestBackendDown: with POST /v1/consents failing (or refusing the client for now,
// 429), the visitor's choice still applies
// locally and is kept in the cookie, flagged as not sent; once the backend is back,
// the next page view sends it exactly once, as chosen (a refusal stays a refusal).
func TestBackendDown(t *testing.T) {
	MustBrowser(t)
	t.Parallel()
	cases := []struct {
		name, site string
		mode       ConsentsMode
		accept     bool
	}{
		{"accept_all/503", "mixvoip.com", ConsentsUnavailable, true},
		{"reject_all/503", "voxbi.team", ConsentsUnavailable, false},
		{"accept_all/connection closed", "voxbi.com", ConsentsHangUp, true},
		{"reject_all/connection closed", "mixvoip.org", ConsentsHangUp, false},
		{"reject_all/429", "mixvoip.org", ConsentsRateLimited, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := MustEnv(t, tc.site)
			enabled := EnabledPartners(env.Config, tc.site)
			action, button, cats := consent.ActionRejectAll, "reject-all", map[string]bool{"technical": true, "advertising": false}
			if tc.accept {
				action, button, cats = consent.ActionAcceptAll, "accept-all", map[string]bool{"technical": true, "advertising": true}
			}
			partners := allPartners(enabled, tc.accept)
			want := map[string]bool{}
			if tc.accept {
				want = TagHosts(env.Config, tc.site, enabled)
			}

			env.SetConsents(tc.mode)
			p := MustOpenPage(t, env, tc.site)
			mark := env.Requests.Mark()
			p.MustNavigate()
			p.MustBannerVisible()
			p.MustClick(button, `layer1('`+button+`')`)
			p.MustBannerHidden()
			p.MustPartnerHosts(mark, want)
			s := p.MustCookieAsIs()
			MustStoredChoices(t, p, s, cats, partners)
			MustEventually(t, "the banner tried to send the decision", func() (bool, string) {
				return postsSince(env, mark) > 0, fmt.Sprint(env.Requests.Backend(mark))
			})
			// The flag may be written only once the failure is known: wait for it, since
			// a reload before that would cancel the failed request's handling.
			MustEventually(t, "the cookie flags the decision as not sent yet", func() (bool, string) {
				raw := p.MustRawCookie()
				return len(pendingFlags(raw)) > 0, rawString(raw)
			})

			env.SetConsents(ConsentsUp)
			mark = env.Requests.Mark()
			p.MustReload()
			p.MustReady()
			recs := env.MustRecords(t, s.ID, 1)
			MustRecord(t, p, recs[0], action, consent.SurfaceBanner, s.Fingerprint, cats, partners)
			p.MustPartnerHosts(mark, want)
			p.MustBannerHidden()
			MustEventually(t, "the cookie's not-sent flag is cleared", func() (bool, string) {
				flags := pendingFlags(p.MustRawCookie())
				return len(flags) == 0, fmt.Sprint(flags)
			})
			if n := postsSince(env, mark); n != 1 {
				t.Errorf("the page view after the backend came back sent %d POSTs, want exactly 1: %v", n, env.Requests.Backend(mark))
			}
			after := p.MustCookie(nil)
			MustStoredChoices(t, p, after, cats, partners)
			if after.ID != s.ID {
				t.Errorf("consent id changed from %s to %s", s.ID, after.ID)
			}

			mark = env.Requests.Mark()
			p.MustReload()
			p.MustReady()
			p.MustNoBackendPost(mark)
			env.MustRecords(t, s.ID, 1)
		})
	}
}

// blockCookiesScript makes document.cookie a no-op, as a browser that blocks
// first-party cookies for the site does.
const blockCookiesScript = `Object.defineProperty(Document.prototype, 'cookie', { get: () => '', set: () => {}, configurable: true });`

// TestCookiesBlocked: without cookies the banner still works for the page it is on
// (the choice applies, partners load, nothing throws), and asks again on the next.
func TestCookiesBlocked(t *testing.T) {
	forSites(t, []string{"voxbi.team"}, func(t *testing.T, env *Env, site string) {
		p := MustOpenPage(t, env, site)
		p.MustInitScript(blockCookiesScript)
		mark := env.Requests.Mark()
		p.MustNavigate()
		p.MustBannerVisible()
		p.MustClick(`"Accept all"`, `layer1('accept-all')`)
		p.MustPartnerHosts(mark, TagHosts(env.Config, site, EnabledPartners(env.Config, site)))
		p.MustWaitJS("the advertising snippet ran", `window.adSnippetRuns === 1`)
		p.MustBannerHidden()
		if MustEval[bool](t, p, `window.consent.get() === null`) {
			t.Error("with cookies blocked, window.consent.get() is null after Accept all")
		}
		for _, c := range p.MustBrowserCookies(env.PageURL(site)) {
			if c.Name == p.Site.Cookie.Name {
				t.Fatalf("the consent cookie was stored although document.cookie is blocked: %+v", c)
			}
		}

		mark = env.Requests.Mark()
		p.MustReload()
		p.MustBannerVisible()
		p.MustNoPartnerRequest(mark, "reload with cookies blocked")
	})
}

// ---------------------------------------------------------------------------
// 6. Embeds with placeholders

// embedPrelude reads the gated embeds of the /embeds page and their placeholders.
const embedPrelude = `
const embedEl = (id) => document.getElementById(id);
const placeholder = (id) => { const e = embedEl(id); const s = e && e.previousElementSibling; return s && s.localName === 'consent-placeholder' ? s : null; };
const phButton = (id, action) => { const p = placeholder(id); return p && p.shadowRoot ? p.shadowRoot.querySelector('[data-action="' + action + '"]') : null; };
const embedState = (id) => {
  const e = embedEl(id), p = placeholder(id), r = p && p.shadowRoot;
  return {
    present: !!e, src: e ? e.getAttribute('src') || '' : '',
    placeholder: !!p, partner: p ? p.getAttribute('data-partner') || '' : '', open: !!r,
    text: r ? r.textContent : '',
    buttons: r ? [...r.querySelectorAll('[data-action]')].map((b) => b.localName + ':' + b.getAttribute('data-action')) : [],
  };
};
`

func embedJS(expr string) string { return `(() => {` + embedPrelude + `return (` + expr + `); })()` }

// EmbedState is what the page shows of one gated embed.
type EmbedState struct {
	Present     bool     `json:"present"`
	Src         string   `json:"src"`
	Placeholder bool     `json:"placeholder"` // a <consent-placeholder> right before it
	Partner     string   `json:"partner"`     // the placeholder's data-partner
	Open        bool     `json:"open"`        // ... with an open shadow root
	Text        string   `json:"text"`
	Buttons     []string `json:"buttons"` // "tag:data-action" of its buttons
}

// embedIDs are the /embeds page's embeds of the site's embed partner.
var embedIDs = map[string]string{"embed-video": "/video", "embed-img": "/pixel.gif"}

func mustEmbed(tb testing.TB, p *Page, id string) EmbedState {
	tb.Helper()
	return MustEval[EmbedState](tb, p, embedJS(`embedState(`+jsString(id)+`)`))
}

// embedRequested reports whether path was requested from EmbedHost after mark.
func embedRequested(env *Env, mark int, path string) bool {
	for _, r := range env.Requests.Since(mark) {
		if r.Host == EmbedHost && r.Path == path {
			return true
		}
	}
	return false
}

// mustPlaceholders waits until every gated embed of the /embeds page shows its
// placeholder and checks what each offers.
func mustPlaceholders(tb testing.TB, p *Page, when string) {
	tb.Helper()
	partner := p.Env.EmbedPartner(p.Site.Key)
	name := p.Site.Partner(partner).Name
	for _, id := range []string{"embed-video", "embed-img", "embed-disabled"} {
		var st EmbedState
		MustEventually(tb, when+": "+id+" has a placeholder", func() (bool, string) {
			st = mustEmbed(tb, p, id)
			return st.Placeholder, fmt.Sprintf("%+v", st)
		})
		if st.Src != "" {
			tb.Errorf("%s: %s has src %q before consent", when, id, st.Src)
		}
		if !st.Open {
			tb.Errorf("%s: the placeholder of %s has no open shadow root", when, id)
		}
		allow := slices.ContainsFunc(st.Buttons, func(b string) bool { return strings.Contains(b, "allow-") })
		if id == "embed-disabled" {
			if allow {
				tb.Errorf("%s: the placeholder of the disabled partner %s offers %v", when, p.Env.DisabledPartner(p.Site.Key), st.Buttons)
			}
			continue
		}
		if st.Partner != partner {
			tb.Errorf("%s: the placeholder of %s says data-partner=%q, want %q", when, id, st.Partner, partner)
		}
		// the video names its own provider (data-provider), the pixel its partner's
		if want := map[string]string{"embed-video": EmbedProvider, "embed-img": name}[id]; !strings.Contains(st.Text, want) {
			tb.Errorf("%s: the placeholder of %s does not name %q: %q", when, id, want, st.Text)
		}
		for _, b := range []string{"button:allow-once", "button:allow-always"} {
			if !slices.Contains(st.Buttons, b) {
				tb.Errorf("%s: the placeholder of %s has no %s; it has %v", when, id, b, st.Buttons)
			}
		}
	}
}

// mustEmbedsLoad waits until the embed partner's embeds have their src and were
// requested after mark, and checks the disabled partner's embed stays empty.
func mustEmbedsLoad(tb testing.TB, p *Page, mark int, when string) {
	tb.Helper()
	for id, path := range embedIDs {
		want := p.Env.EmbedURL(path)
		MustEventually(tb, when+": "+id+" loads", func() (bool, string) {
			st := mustEmbed(tb, p, id)
			return st.Src == want && embedRequested(p.Env, mark, path), fmt.Sprintf("%+v; requested since: %v", st, p.Env.Requests.Since(mark))
		})
	}
	if st := mustEmbed(tb, p, "embed-disabled"); st.Src != "" {
		tb.Errorf("%s: the disabled partner's embed has src %q", when, st.Src)
	}
}

// TestEmbedPlaceholders: gated embeds stay empty behind a placeholder that names the
// partner; "Allow once" loads that partner's embeds for this page view only, without
// a record; "Always allow" records a custom consent for exactly that partner, and
// from then on its embeds load at once; an embed of a partner that is not enabled
// never loads and offers nothing to allow.
func TestEmbedPlaceholders(t *testing.T) {
	forSites(t, []string{"mixvoip.com", "voxbi.com"}, func(t *testing.T, env *Env, site string) {
		enabled := EnabledPartners(env.Config, site)
		partner := env.EmbedPartner(site)
		p := MustOpenPage(t, env, site)
		start := env.Requests.Mark()
		mark := start
		p.MustNavigatePath(EmbedsPath)
		p.MustBannerVisible()
		mustPlaceholders(t, p, "first visit")
		p.MustNoPartnerRequest(mark, "first visit with embeds")

		p.MustClickScrolledTop(`"Allow once" on the video's placeholder`, embedJS(`phButton('embed-video', 'allow-once')`))
		mustEmbedsLoad(t, p, mark, "after Allow once")
		p.MustNoBackendPost(mark)
		for _, c := range p.MustBrowserCookies(env.PageURL(site)) {
			if c.Name == p.Site.Cookie.Name {
				t.Errorf("Allow once stored a consent cookie: %s", c.Value)
			}
		}

		mark = env.Requests.Mark()
		p.MustReload()
		p.MustBannerVisible()
		mustPlaceholders(t, p, "reload after Allow once")
		p.MustNoPartnerRequest(mark, "reload after Allow once")

		p.MustClickScrolledTop(`"Always allow" on the video's placeholder`, embedJS(`phButton('embed-video', 'allow-always')`))
		mustEmbedsLoad(t, p, mark, "after Always allow")
		wantPartners := allPartners(enabled, false)
		wantPartners[partner] = true
		s := p.MustCookie(nil)
		MustStoredChoices(t, p, s, map[string]bool{"technical": true, "advertising": true}, wantPartners)
		recs := env.MustRecords(t, s.ID, 1)
		MustRecordAt(t, p, recs[0], env.Origin(site)+EmbedsPath, consent.ActionCustom, consent.SurfacePlaceholder, s.Fingerprint, map[string]bool{"advertising": true}, wantPartners)

		mark = env.Requests.Mark()
		p.MustReload()
		p.MustReady()
		mustEmbedsLoad(t, p, mark, "reload after Always allow")
		for id := range embedIDs {
			if st := mustEmbed(t, p, id); st.Placeholder {
				t.Errorf("reload after Always allow: %s still has a placeholder", id)
			}
		}
		if st := mustEmbed(t, p, "embed-disabled"); !st.Placeholder || slices.ContainsFunc(st.Buttons, func(b string) bool { return strings.Contains(b, "allow-") }) {
			t.Errorf("reload after Always allow: the disabled partner's embed: %+v; want a placeholder without allow buttons", st)
		}
		want := TagHosts(env.Config, site, []string{partner})
		want[EmbedHost] = true
		p.MustRequestedHosts(mark, want)
		p.MustNoBackendPost(mark)
		if embedRequested(env, start, "/disabled-video") {
			t.Errorf("the embed of disabled partner %s was requested", env.DisabledPartner(site))
		}
	})
}

// ---------------------------------------------------------------------------
// 7. Elements added later (single-page apps)

// insertJS appends an element built from html to <main> and reports success.
func insertJS(html string) string {
	return `(() => { const t = document.createElement('template'); t.innerHTML = ` + jsString(html) + `; document.querySelector('main').append(t.content); return true; })()`
}

// insertScriptJS appends a gated inline script: innerHTML would not create one that
// can run, so it is built as a page's framework would.
func insertScriptJS(id, partner, code string) string {
	p := ""
	if partner != "" {
		p = `s.setAttribute('data-partner', ` + jsString(partner) + `);`
	}
	return `(() => { const s = document.createElement('script'); s.type = 'text/plain'; s.id = ` + jsString(id) +
		`; s.setAttribute('data-category', 'advertising');` + p + ` s.text = ` + jsString(code) + `; document.querySelector('main').append(s); return true; })()`
}

// TestSPAInsertion: elements the page adds after load are gated too: before consent an
// embed gets a placeholder, after consent gated scripts and embeds run at once
// without a reload, and one naming a disabled partner never does.
func TestSPAInsertion(t *testing.T) {
	forSites(t, []string{"mixvoip.org"}, func(t *testing.T, env *Env, site string) {
		partner := env.EmbedPartner(site)
		embed := func(id, path string) string {
			return `<iframe id="` + id + `" title="video" width="320" height="180" data-category="advertising" data-partner="` + partner + `" data-src="` + env.EmbedURL(path) + `"></iframe>`
		}
		p := MustOpenPage(t, env, site)
		mark := env.Requests.Mark()
		p.MustNavigate()
		p.MustBannerVisible()

		MustEval[bool](t, p, insertJS(embed("spa-early", "/spa-early")))
		MustEval[bool](t, p, insertScriptJS("spa-early-script", "", `document.documentElement.setAttribute('data-spa-early', '1');`))
		MustEventually(t, "the embed added before consent gets a placeholder", func() (bool, string) {
			st := mustEmbed(t, p, "spa-early")
			return st.Placeholder, fmt.Sprintf("%+v", st)
		})
		if st := mustEmbed(t, p, "spa-early"); st.Src != "" || embedRequested(env, mark, "/spa-early") {
			t.Errorf("the embed added before consent loaded: %+v", st)
		}
		if MustEval[bool](t, p, `document.documentElement.hasAttribute('data-spa-early')`) {
			t.Error("the gated script added before consent ran")
		}

		p.MustClick(`"Accept all"`, `layer1('accept-all')`)
		p.MustWaitJS("the gated script added before consent runs after Accept all", `document.documentElement.getAttribute('data-spa-early') === '1'`)
		MustEventually(t, "the embed added before consent loads after Accept all", func() (bool, string) {
			st := mustEmbed(t, p, "spa-early")
			return st.Src == env.EmbedURL("/spa-early") && embedRequested(env, mark, "/spa-early"), fmt.Sprintf("%+v", st)
		})

		MustEval[bool](t, p, insertScriptJS("spa-disabled", env.DisabledPartner(site), `document.documentElement.setAttribute('data-spa-disabled', '1');`))
		MustEval[bool](t, p, insertScriptJS("spa-script", "", `document.documentElement.setAttribute('data-spa-late', '1');`))
		MustEval[bool](t, p, insertJS(embed("spa-late", "/spa-late")))
		p.MustWaitJS("the gated script added after consent runs", `document.documentElement.getAttribute('data-spa-late') === '1'`)
		MustEventually(t, "the embed added after consent loads", func() (bool, string) {
			st := mustEmbed(t, p, "spa-late")
			return st.Src == env.EmbedURL("/spa-late") && !st.Placeholder && embedRequested(env, mark, "/spa-late"), fmt.Sprintf("%+v", st)
		})
		if MustEval[bool](t, p, `document.documentElement.hasAttribute('data-spa-disabled')`) {
			t.Errorf("a script added later that names the disabled partner %s ran", env.DisabledPartner(site))
		}
		if MustEval[int](t, p, `document.querySelectorAll('[data-spa-late]').length`) != 1 {
			t.Error("the gated script added after consent ran more than once")
		}
	})
}

// ---------------------------------------------------------------------------
// 8. The page's JavaScript API

// apiEventsScript records the banner's DOM events from the start of every document.
const apiEventsScript = `window.__e2e = { ready: [], change: [], on: [] };
document.addEventListener('consent:ready', (e) => window.__e2e.ready.push(e.detail === undefined ? null : e.detail));
document.addEventListener('consent:change', (e) => window.__e2e.change.push(e.detail === undefined ? null : e.detail));`

type apiEvents struct {
	Ready  []*consent.Choices `json:"ready"`
	Change []*consent.Choices `json:"change"`
	On     []*consent.Choices `json:"on"`
}

func sameChoices(got *consent.Choices, categories, partners map[string]bool) bool {
	return got != nil && maps.Equal(got.Categories, categories) && maps.Equal(got.Partners, partners)
}

// TestPublicAPI: window.consent.get() is null before a decision and the choices after;
// consent.on('change') and the consent:change event carry the choices; consent:ready
// fires once per page; consent.set() records a custom decision from the page (surface
// api) that loads only what it grants; consent.open() opens the preferences.
func TestPublicAPI(t *testing.T) {
	forSites(t, []string{"voxbi.team"}, func(t *testing.T, env *Env, site string) {
		enabled := EnabledPartners(env.Config, site)
		chosen := enabled[0]
		cats := map[string]bool{"technical": true, "advertising": true}
		partners := allPartners(enabled, false)
		partners[chosen] = true

		p := MustOpenPage(t, env, site)
		p.MustInitScript(apiEventsScript)
		mark := env.Requests.Mark()
		p.MustNavigate()
		p.MustBannerVisible()
		p.MustWaitJS("consent:ready fired", `window.__e2e.ready.length > 0`)
		if !MustEval[bool](t, p, `window.consent.get() === null`) {
			t.Error("window.consent.get() is not null before a decision")
		}
		MustEval[bool](t, p, `(window.consent.on('change', (c) => window.__e2e.on.push(c === undefined ? null : c)), true)`)

		MustEval[bool](t, p, `(window.consent.set({ categories: { advertising: true }, partners: { `+jsString(chosen)+`: true } }), true)`)
		p.MustPartnerHosts(mark, TagHosts(env.Config, site, []string{chosen}))
		p.MustBannerHidden()
		s := p.MustCookie(nil)
		MustStoredChoices(t, p, s, cats, partners)
		recs := env.MustRecords(t, s.ID, 1)
		MustRecord(t, p, recs[0], consent.ActionCustom, consent.SurfaceAPI, s.Fingerprint, map[string]bool{"advertising": true}, partners)

		var ev apiEvents
		MustEventually(t, "consent:change and on('change') fired", func() (bool, string) {
			ev = MustEval[apiEvents](t, p, `window.__e2e`)
			return len(ev.Change) > 0 && len(ev.On) > 0, fmt.Sprintf("%+v", ev)
		})
		if len(ev.Change) != 1 || !sameChoices(ev.Change[0], cats, partners) {
			t.Errorf("consent:change events = %s, want one with the choices", choicesList(ev.Change))
		}
		if len(ev.On) != 1 || !sameChoices(ev.On[0], cats, partners) {
			t.Errorf("consent.on('change') calls = %s, want one with the choices", choicesList(ev.On))
		}
		if len(ev.Ready) != 1 {
			t.Errorf("consent:ready fired %d times on the first page, want once", len(ev.Ready))
		}
		if got := MustEval[*consent.Choices](t, p, `window.consent.get()`); !sameChoices(got, cats, partners) {
			t.Errorf("window.consent.get() = %s after consent.set, want the choices", choicesList([]*consent.Choices{got}))
		}

		MustEval[bool](t, p, `(window.consent.open(), true)`)
		p.MustDialogOpen()
		for id, on := range partners {
			if got := MustEval[bool](t, p, `inDialog('input[data-partner=`+jsString(id)+`]').checked`); got != on {
				t.Errorf("consent.open(): the %s toggle is %t, want %t", id, got, on)
			}
		}
		if !MustEval[bool](t, p, `inDialog('input[data-category="advertising"]').checked`) {
			t.Error("consent.open(): the advertising toggle is off after consent.set granted it")
		}

		mark = env.Requests.Mark()
		p.MustReload()
		p.MustReady()
		p.MustWaitJS("consent:ready fired after the reload", `window.__e2e.ready.length > 0`)
		if got := MustEval[*consent.Choices](t, p, `window.consent.get()`); !sameChoices(got, cats, partners) {
			t.Errorf("after a reload window.consent.get() = %s, want the stored choices", choicesList([]*consent.Choices{got}))
		}
		p.MustPartnerHosts(mark, TagHosts(env.Config, site, []string{chosen}))
		p.MustNoBackendPost(mark)
		if ev := MustEval[apiEvents](t, p, `window.__e2e`); len(ev.Ready) != 1 || len(ev.Change) != 0 {
			t.Errorf("after a reload: consent:ready fired %d times (want 1), consent:change %d times (want 0)", len(ev.Ready), len(ev.Change))
		}
	})
}

func choicesList(cs []*consent.Choices) string {
	var out []string
	for _, c := range cs {
		if c == nil {
			out = append(out, "null")
			continue
		}
		b, _ := json.Marshal(c)
		out = append(out, string(b))
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// TestPageInAnotherLanguage: a page whose language is not the browser's gets the
// first layer from the script in the browser's language and the page's texts with
// the second layer's script, before anything shows: two requests, the banner in the
// page's language, and the preferences open without a third. On a repeat view the
// page's texts are loaded only for the floating "Cookie settings" button.
func TestPageInAnotherLanguage(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		st := env.Config.Sites[site]
		lang := st.Languages[1] // the browser speaks Languages[0]
		p := MustOpenPage(t, env, site)
		mark := env.Requests.Mark()
		p.MustNavigateLang(lang)
		p.MustBannerVisible()
		script, second := "GET /v1/banner/"+site+".js", "GET /v1/banner/"+site+"/"+lang+".js"
		if got := env.Requests.Backend(mark); !equalLists(got, []string{script, second}) {
			t.Errorf("requests to %s on first view = %q, want %q", backendHost, got, []string{script, second})
		}
		texts := MustBannerTexts(t, lang)
		if got := MustEval[string](t, p, `layer1('reject-all').textContent`); got != texts["rejectAll"] {
			t.Errorf("reject button says %q, want %q (%s)", got, texts["rejectAll"], lang)
		}
		mark = env.Requests.Mark()
		p.MustClick(`"Customize"`, `layer1('customize')`)
		p.MustDialogOpen()
		if got := env.Requests.Backend(mark); len(got) != 0 {
			t.Errorf("opening the preferences requested %q, want nothing: the second layer is there", got)
		}
		p.MustClick(`"Reject all" in the preferences`, `inDialog('[data-action="reject-all"]')`)
		p.MustBannerHidden()
		p.MustCookie(nil)

		p.MustNavigateLang(lang)
		p.MustReady()
		if st.FloatingButton {
			p.MustWaitJS("the floating button shows", `!!root() && !!root().querySelector('.f')`)
		}
		// from the browser's cache or not: what the page loaded
		loaded := MustEval[bool](t, p, `performance.getEntriesByType('resource').some((e) => e.name.includes('/v1/banner/`+site+`/'))`)
		if loaded != st.FloatingButton {
			t.Errorf("a repeat view loaded the second layer: %v, want %v (only for the floating button's text)", loaded, st.FloatingButton)
		}
	})
}

// TestPreferencesOpenOnce: "Customize" clicked twice while the second layer loads
// opens one dialog, loads the second layer once, and its "Save" records its switches.
func TestPreferencesOpenOnce(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		p := MustOpenPage(t, env, site)
		p.MustNavigate()
		p.MustBannerVisible()
		mark := env.Requests.Mark()
		MustEval[bool](t, p, `(layer1('customize').click(), layer1('customize').click(), true)`)
		p.MustDialogOpen()
		p.MustClick("the advertising toggle", `inDialog('input[data-category="advertising"]')`)
		p.MustClick(`"Save"`, `inDialog('[data-action="save"]')`)
		s := p.MustCookie(nil)
		if !s.Categories["advertising"] {
			t.Errorf("Save stored %v, want advertising granted as switched", s.Categories)
		}
		p.MustWaitJS("the preferences closed", `!root().querySelector('dialog')`)
		second := "GET /v1/banner/" + site + "/" + p.Site.Languages[0] + ".js"
		if got := env.Requests.Backend(mark); !equalLists(got, []string{second, "POST /v1/consents"}) {
			t.Errorf("requests to %s = %q, want the second layer once and one POST", backendHost, got)
		}
	})
}

// TestDecisionBeforeBanner: a page that decides through window.consent.set as soon
// as the script has run gets no first layer after it.
func TestDecisionBeforeBanner(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		p := MustOpenPage(t, env, site)
		p.MustInitScript(`document.addEventListener('load', (e) => {
  if (e.target.src && e.target.src.endsWith('/v1/banner/` + site + `.js')) window.consent.set({ categories: { advertising: false } });
}, true);
document.addEventListener('consent:ready', () => { window.bannerReady = true; });`)
		p.MustNavigate()
		p.MustWaitJS("the banner is ready", `window.bannerReady === true`)
		s := p.MustCookie(nil)
		if r := env.MustRecords(t, s.ID, 1)[0]; r.Surface != consent.SurfaceAPI {
			t.Errorf("record from surface %s, want api", r.Surface)
		}
		if shown := MustEval[bool](t, p, `!!layer1('accept-all')`); shown {
			t.Error("the first layer shows after the page decided")
		}
	})
}

// TestLanguageChoice: the page's <html lang> wins (matched on its primary subtag),
// then the browser's languages, then the site's default language.
func TestLanguageChoice(t *testing.T) {
	const site = "voxbi.com" // fr (default), nl, de, en
	tests := []struct {
		name, htmlLang string
		browser        []string
		want           string
	}{
		{"page language with a region", "nl-BE", []string{"en-US"}, "nl"},
		{"browser language when the page's is not the site's", "ja", []string{"it", "de-DE", "en"}, "de"},
		{"site default when neither is", "ja", []string{"ja", "it"}, "fr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := MustEnv(t, site)
			p := MustOpenPage(t, env, site)
			langs, _ := json.Marshal(tt.browser)
			p.MustInitScript(`Object.defineProperty(Navigator.prototype, 'languages', { get: () => ` + string(langs) + ` });`)
			p.MustNavigateLang(tt.htmlLang)
			p.MustBannerVisible()
			got := MustEval[string](t, p, `(() => { const el = layer1('accept-all').closest('[lang]'); return el ? el.getAttribute('lang') : document.querySelector('consent-banner').getAttribute('lang'); })()`)
			if got != tt.want {
				t.Errorf("banner language = %q, want %q", got, tt.want)
			}
			texts := MustBannerTexts(t, tt.want)
			if label := MustEval[string](t, p, `layer1('accept-all').textContent`); label != texts["acceptAll"] {
				t.Errorf("accept button says %q, want %q", label, texts["acceptAll"])
			}
		})
	}
}

// TestPartnerTagsRunInOrder: a partner's tags run strictly in the order of
// sites.yaml: the snippet after a partner's script runs only once that script has
// run, as Microsoft's UET snippet needs the UET its bat.js defines.
func TestPartnerTagsRunInOrder(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		enabled := EnabledPartners(env.Config, site)
		p := MustOpenPage(t, env, site)
		p.MustNavigate()
		p.MustBannerVisible()
		p.MustClick(`"Accept all"`, `layer1('accept-all')`)
		p.MustWaitJS("every partner's snippet after its script ran", `(window.tagOrder || []).length === `+strconv.Itoa(len(enabled)))
		order := MustEval[[]string](t, p, `window.tagOrder`)
		for _, o := range order {
			if !strings.HasSuffix(o, ":true") {
				t.Errorf("a partner's snippet ran before its script: %s (all: %q)", o, order)
			}
		}
	})
}

// TestSendingAgain: a decision consentd refused (a 4xx, readable across origins) is
// never sent again; one that
// could not be sent (a network error) is sent again on the next page view, then no
// sooner than its backoff allows, five times in all, then no more.
func TestSendingAgain(t *testing.T) {
	MustBrowser(t)
	t.Parallel()
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		// consentd itself refuses: the apex is not among the site's origins here.
		env := MustEnv(t, "voxbi.team")
		p := MustOpenPage(t, env, "voxbi.team")
		mark := env.Requests.Mark()
		apex := "http://voxbi.team:" + env.Port + "/"
		if err := chromedp.Do(p.ctx, chromedp.Navigate(apex)); err != nil {
			t.Fatalf("navigate to %s: %v", apex, err)
		}
		p.MustBannerVisible()
		p.MustClick(`"Reject all"`, `layer1('reject-all')`)
		MustEventually(t, "the refused decision's pending flag is cleared", func() (bool, string) {
			raw := p.MustRawCookie()
			return postsSince(env, mark) == 1 && len(pendingFlags(raw)) == 0, rawString(raw)
		})
		mark = env.Requests.Mark()
		p.MustReload()
		p.MustReady()
		p.MustNoBackendPost(mark)
	})
	t.Run("not sent", func(t *testing.T) {
		t.Parallel()
		env := MustEnv(t, "mixvoip.org")
		env.SetConsents(ConsentsHangUp)
		p := MustOpenPage(t, env, "mixvoip.org")
		mark := env.Requests.Mark()
		p.MustNavigate()
		p.MustBannerVisible()
		p.MustClick(`"Reject all"`, `layer1('reject-all')`)
		attempt := func(n int) { // waits for attempt n to have failed
			MustEventually(t, fmt.Sprintf("attempt %d failed", n), func() (bool, string) {
				raw := p.MustRawCookie()
				return postsSince(env, mark) == n && string(raw["s"]) == strconv.Itoa(n+1), rawString(raw)
			})
		}
		attempt(1)
		p.MustReload() // at once: the first try again needs no wait
		p.MustReady()
		attempt(2)
		soon := env.Requests.Mark()
		p.MustReload() // too soon: a minute must pass first
		p.MustReady()
		p.MustNoBackendPost(soon)
		for n := 3; n <= 5; n++ {
			p.MustPendingDue() // as if the time had passed
			p.MustReload()
			p.MustReady()
			if n < 5 {
				attempt(n)
			}
		}
		MustEventually(t, "the fifth failure is the last: the flag is cleared", func() (bool, string) {
			raw := p.MustRawCookie()
			return postsSince(env, mark) == 5 && len(pendingFlags(raw)) == 0, rawString(raw)
		})
		last := env.Requests.Mark()
		p.MustReload()
		p.MustReady()
		p.MustNoBackendPost(last)
		MustStoredChoices(t, p, p.MustCookieAsIs(), map[string]bool{"technical": true, "advertising": false}, allPartners(EnabledPartners(env.Config, "mixvoip.org"), false))
	})
}

// TestPartnerNeedsItsPurpose: in the preferences, switching a partner on switches
// its purpose on, in view, and saving records both; switching the purpose off
// switches its partners off.
func TestPartnerNeedsItsPurpose(t *testing.T) {
	forSites(t, []string{"mixvoip.com", "voxbi.team"}, func(t *testing.T, env *Env, site string) {
		enabled := EnabledPartners(env.Config, site)
		chosen := enabled[0]
		p := MustOpenPage(t, env, site)
		p.MustNavigate()
		p.MustBannerVisible()
		p.MustClick(`"Customize"`, `layer1('customize')`)
		p.MustDialogOpen()
		category, partner := `inDialog('input[data-category="advertising"]')`, `inDialog('input[data-partner=`+jsString(chosen)+`]')`
		p.MustClick("the partner's switch", partner)
		p.MustWaitJS("the purpose switched on with its partner", category+`.checked && `+partner+`.checked`)
		p.MustClick("the purpose's switch", category)
		p.MustWaitJS("the partners switched off with their purpose", `!`+category+`.checked && [...root().querySelectorAll('dialog input[data-partner]')].every((i) => !i.checked)`)
		p.MustClick("the partner's switch again", partner)
		p.MustClick(`"Save"`, `inDialog('[data-action="save"]')`)
		s := p.MustCookie(nil)
		partners := allPartners(enabled, false)
		partners[chosen] = true
		recs := env.MustRecords(t, s.ID, 1)
		MustRecord(t, p, recs[0], consent.ActionCustom, consent.SurfacePreferences, s.Fingerprint, map[string]bool{"advertising": true}, partners)
	})
}
