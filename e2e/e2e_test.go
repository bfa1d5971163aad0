package e2e

import (
	"maps"
	"sync"
	"testing"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
)

// forEachSite runs f as a parallel subtest per site of sites.yaml, each with its own
// Env (server, store, port) and its own browser context.
func forEachSite(t *testing.T, f func(t *testing.T, env *Env, site string)) {
	t.Helper()
	MustBrowser(t)
	t.Parallel()
	cfg, err := config.Load(sitesFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, site := range cfg.SiteKeys() {
		t.Run(site, func(t *testing.T) {
			t.Parallel()
			f(t, MustEnv(t, site), site)
		})
	}
}

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

// TestFirstVisit: the banner shows, nothing optional loads and nothing is sent to
// the backend before the visitor decides; the first view of a page in the browser's
// language costs one request, in every language of the site.
func TestFirstVisit(t *testing.T) {
	forEachSiteLang(t, func(t *testing.T, env *Env, site, lang string) {
		p := MustOpenPage(t, env, site)
		p.MustBrowserLanguage(lang)
		mark := env.Requests.Mark()
		p.MustNavigateLang(lang)
		p.MustNoPartnerRequest(mark, "after the load event")

		p.MustBannerVisible()
		p.MustNoPartnerRequest(mark, "with the banner shown")
		if got, want := env.Requests.Backend(mark), []string{"GET /v1/banner/" + site + ".js"}; !equalLists(got, want) {
			t.Errorf("requests to %s on first view = %q, want %q", backendHost, got, want)
		}
		if got := MustEval[string](t, p, `document.querySelector('consent-banner').lang`); got != lang {
			t.Errorf("banner language %q, want %q", got, lang)
		}
		if dom := p.MustDOM(); len(dom.PartnerScripts) > 0 || dom.AdSnippetRuns != 0 || !dom.DisabledInert {
			t.Errorf("before any decision the page ran optional code: %+v", dom)
		}
		if got := MustEval[bool](t, p, `window.consent.get() === null`); !got {
			t.Error("window.consent.get() is not null before any decision")
		}
	})
}

// TestRejectAll: "Reject all" is recorded, remembered in the rejection cookie and
// applied: nothing optional loads, now or after a reload, and nothing more is sent.
func TestRejectAll(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		p := MustOpenPage(t, env, site)
		mark := env.Requests.Mark()
		p.MustNavigate()
		p.MustBannerVisible()

		MustRejectAll(t, p)
		p.MustNoPartnerRequest(mark, "after Reject all")
		if dom := p.MustDOM(); len(dom.PartnerScripts) > 0 || dom.AdSnippetRuns != 0 || !dom.DisabledInert {
			t.Errorf("after Reject all the page ran optional code: %+v", dom)
		}

		mark = env.Requests.Mark()
		p.MustReload()
		p.MustReady()
		p.MustBannerHidden()
		p.MustNoPartnerRequest(mark, "after a reload with the refusal stored")
		p.MustNoBackendPost(mark)
		if dom := p.MustDOM(); len(dom.PartnerScripts) > 0 || dom.AdSnippetRuns != 0 || !dom.DisabledInert {
			t.Errorf("after a reload with the refusal stored the page ran optional code: %+v", dom)
		}
	})
}

// TestSettingsLinkAcceptAll: after a refusal, the footer's "Cookie settings" link
// opens the second layer; "Accept all" there loads exactly the enabled partners,
// is recorded as a second decision of the same consent id, and holds after a reload.
func TestSettingsLinkAcceptAll(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		p := MustOpenPage(t, env, site)
		p.MustNavigate()
		p.MustBannerVisible()
		refusal := MustRejectAll(t, p)
		p.MustReload()
		p.MustReady()
		p.MustBannerHidden()

		mark := env.Requests.Mark()
		p.MustClick(`the footer's "Cookie settings" link`, `document.querySelector('a[data-consent-open]')`)
		p.MustDialogOpen()
		if on := MustEval[bool](t, p, `inDialog('input[data-category="advertising"]').checked`); on {
			t.Error("the preferences show advertising on after a refusal")
		}
		p.MustClick(`"Accept all" in the preferences`, `inDialog('[data-action="accept-all"]')`)

		enabled := EnabledPartners(env.Config, site)
		want := TagHosts(env.Config, site, enabled)
		p.MustPartnerHosts(mark, want)
		p.MustWaitJS("the advertising snippet ran", `window.adSnippetRuns === 1`)
		if dom := p.MustDOM(); !dom.DisabledInert || dom.AdSnippetRuns != 1 {
			t.Errorf("after Accept all: %+v; want the advertising snippet run once and the disabled partner's snippet inert", dom)
		}
		p.MustWaitJS("the preferences dialog closes", `!root().querySelector('dialog')`)
		p.MustBannerHidden()

		all := allPartners(enabled, true)
		grant := p.MustCookie(func(s Stored) bool { return s.Categories["advertising"] })
		MustStoredChoices(t, p, grant, map[string]bool{"technical": true, "advertising": true}, all)
		if grant.ID != refusal.ID {
			t.Errorf("consent id changed from %s to %s: the visitor's history is split", refusal.ID, grant.ID)
		}
		recs := env.MustRecords(t, grant.ID, 2)
		MustRecord(t, p, recs[0], consent.ActionRejectAll, consent.SurfaceBanner, grant.Fingerprint, map[string]bool{"advertising": false}, allPartners(enabled, false))
		MustRecord(t, p, recs[1], consent.ActionAcceptAll, consent.SurfacePreferences, grant.Fingerprint, map[string]bool{"advertising": true}, all)
		prefs := "GET /v1/banner/" + site + "/" + p.Site.Languages[0] + ".js"
		if got := env.Requests.Backend(mark); !equalLists(got, []string{prefs, "POST /v1/consents"}) {
			t.Errorf("requests to %s for the preferences and Accept all = %q, want the second layer's script and one POST", backendHost, got)
		}
		if env.Requests.PartnerHosts(0)[disabledSnippetHost] {
			t.Errorf("the snippet of disabled partner %s was loaded", env.DisabledPartner(site))
		}

		// The stored consent applies at once on the next page view, without asking.
		mark = env.Requests.Mark()
		p.MustReload()
		p.MustReady()
		p.MustPartnerHosts(mark, want)
		p.MustBannerHidden()
		p.MustNoBackendPost(mark)
		p.MustWaitJS("the advertising snippet ran after the reload", `window.adSnippetRuns === 1`)
		if dom := p.MustDOM(); !dom.DisabledInert {
			t.Errorf("after a reload with consent stored, the disabled partner's snippet ran: %+v", dom)
		}
		if env.Requests.PartnerHosts(0)[disabledSnippetHost] {
			t.Errorf("the snippet of disabled partner %s was loaded", env.DisabledPartner(site))
		}
		env.MustRecords(t, grant.ID, 2)
	})
}

// TestPartnerSwitchedOff: a partner that marketing switches off in sites.yaml is
// never requested, even on "Accept all", while the others still load.
func TestPartnerSwitchedOff(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		enabled := EnabledPartners(env.Config, site)
		if len(enabled) < 2 {
			t.Skipf("%s enables %d partners; the test needs two", site, len(enabled))
		}
		off := enabled[0]
		cfg := env.WithPartner(site, off, false)
		if err := env.Server.Load(cfg); err != nil {
			t.Fatal(err)
		}

		p := MustOpenPage(t, env, site)
		mark := env.Requests.Mark()
		p.MustNavigate()
		p.MustBannerVisible()
		p.MustClick(`"Accept all"`, `layer1('accept-all')`)

		still := EnabledPartners(cfg, site)
		p.MustPartnerHosts(mark, TagHosts(cfg, site, still))
		if env.Requests.PartnerHosts(mark)[off+partnerDomain] {
			t.Errorf("partner %s was switched off but its tag was requested", off)
		}
		s := p.MustCookie(nil)
		if s.Fingerprint != banner.Fingerprint(cfg.Sites[site]) {
			t.Errorf("cookie fingerprint %s, want the reloaded config's %s", s.Fingerprint, banner.Fingerprint(cfg.Sites[site]))
		}
		recs := env.MustRecords(t, s.ID, 1)
		MustRecord(t, p, recs[0], consent.ActionAcceptAll, consent.SurfaceBanner, s.Fingerprint, map[string]bool{"advertising": true}, allPartners(still, true))
	})
}

// TestPartnerSwitchedOffKeepsConsent: switching a partner off does not ask visitors
// again (only a partner switched on needs a new answer). A visitor who accepted keeps the consent for the other partners,
// which load at once; the switched-off one never does.
func TestPartnerSwitchedOffKeepsConsent(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		enabled := EnabledPartners(env.Config, site)
		if len(enabled) < 2 {
			t.Fatalf("%s enables %d partners in sites.yaml; the test needs two", site, len(enabled))
		}
		p := MustOpenPage(t, env, site)
		p.MustNavigate()
		p.MustBannerVisible()
		p.MustClick(`"Accept all"`, `layer1('accept-all')`)
		s := p.MustCookie(nil)
		env.MustRecords(t, s.ID, 1)

		off := enabled[0]
		cfg := env.WithPartner(site, off, false)
		if err := env.Server.Load(cfg); err != nil {
			t.Fatal(err)
		}
		p.MustClearCache() // the script's max-age has run out: the visitor gets the new banner

		mark := env.Requests.Mark()
		p.MustReload()
		p.MustWaitJS("the banner script ran", `!!window.consent`)
		p.MustBannerHidden()
		p.MustReady()
		p.MustPartnerHosts(mark, TagHosts(cfg, site, EnabledPartners(cfg, site)))
		p.MustNoBackendPost(mark)
	})
}

// TestPartnerSwitchedOnAsksAgain: a partner switched on that the visitor never
// answered needs fresh consent: the banner shows again and nothing new loads until
// the visitor answers.
func TestPartnerSwitchedOnAsksAgain(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		off := env.DisabledPartner(site)
		if env.Config.Sites[site].Partner(off) == nil {
			t.Fatalf("%s has no partner switched off in sites.yaml to switch on", site)
		}
		p := MustOpenPage(t, env, site)
		p.MustNavigate()
		p.MustBannerVisible()
		p.MustClick(`"Accept all"`, `layer1('accept-all')`)
		env.MustRecords(t, p.MustCookie(nil).ID, 1)

		if err := env.Server.Load(env.WithPartner(site, off, true)); err != nil {
			t.Fatal(err)
		}
		p.MustClearCache()
		mark := env.Requests.Mark()
		p.MustReload()
		p.MustBannerVisible()
		p.MustNoPartnerRequest(mark, "before the visitor answered again")
		p.MustNoBackendPost(mark)
	})
}

// TestCustomize: the second layer grants the advertising category and exactly one
// partner; only that partner loads, and the record says exactly that.
func TestCustomize(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		enabled := EnabledPartners(env.Config, site)
		chosen := enabled[len(enabled)-1]

		p := MustOpenPage(t, env, site)
		mark := env.Requests.Mark()
		p.MustNavigate()
		p.MustBannerVisible()
		p.MustClick(`"Customize"`, `layer1('customize')`)
		p.MustDialogOpen()
		p.MustClick("the advertising toggle", `inDialog('input[data-category="advertising"]')`)
		p.MustWaitJS("the advertising toggle is on", `inDialog('input[data-category="advertising"]').checked`)
		p.MustClick("the "+chosen+" toggle", `inDialog('input[data-partner=`+jsString(chosen)+`]')`)
		p.MustWaitJS("the "+chosen+" toggle is on", `inDialog('input[data-partner=`+jsString(chosen)+`]').checked`)
		p.MustNoPartnerRequest(mark, "before Save")
		p.MustClick(`"Save"`, `inDialog('[data-action="save"]')`)

		p.MustPartnerHosts(mark, TagHosts(env.Config, site, []string{chosen}))
		p.MustWaitJS("the advertising snippet ran", `window.adSnippetRuns === 1`)
		p.MustBannerHidden()

		want := allPartners(enabled, false)
		want[chosen] = true
		s := p.MustCookie(nil)
		MustStoredChoices(t, p, s, map[string]bool{"technical": true, "advertising": true}, want)
		recs := env.MustRecords(t, s.ID, 1)
		MustRecord(t, p, recs[0], consent.ActionCustom, consent.SurfacePreferences, s.Fingerprint, map[string]bool{"advertising": true}, want)
		if dom := p.MustDOM(); !dom.DisabledInert {
			t.Errorf("the disabled partner's snippet ran: %+v", dom)
		}
	})
}

// MustRejectAll clicks "Reject all" in the first layer and checks what it leaves:
// the banner gone, one reject_all record, and the rejection cookie.
func MustRejectAll(tb testing.TB, p *Page) Stored {
	tb.Helper()
	mark := p.Env.Requests.Mark()
	p.MustClick(`"Reject all"`, `layer1('reject-all')`)
	p.MustBannerHidden()

	enabled := EnabledPartners(p.Env.Config, p.Site.Key)
	s := p.MustCookie(nil)
	MustStoredChoices(tb, p, s, map[string]bool{"technical": true, "advertising": false}, allPartners(enabled, false))
	recs := p.Env.MustRecords(tb, s.ID, 1)
	MustRecord(tb, p, recs[0], consent.ActionRejectAll, consent.SurfaceBanner, s.Fingerprint, map[string]bool{"advertising": false}, allPartners(enabled, false))
	if got := p.Env.Requests.Backend(mark); !equalLists(got, []string{"POST /v1/consents"}) {
		tb.Errorf("requests to %s for Reject all = %q, want one POST", backendHost, got)
	}
	return s
}

// MustStoredChoices checks the consent cookie: a version 4 consent id, the current
// fingerprint, exactly these categories and partners, on the registrable domain.
func MustStoredChoices(tb testing.TB, p *Page, s Stored, categories, partners map[string]bool) {
	tb.Helper()
	if id, err := uuid.Parse(s.ID); err != nil || id.Version() != 4 {
		tb.Errorf("cookie consent id %q is not a random UUID", s.ID)
	}
	if want := banner.Fingerprint(p.Site); s.Fingerprint == "" || s.Fingerprint != want {
		tb.Errorf("cookie fingerprint = %q, want %q", s.Fingerprint, want)
	}
	if !maps.Equal(s.Categories, categories) {
		tb.Errorf("cookie categories = %v, want %v", s.Categories, categories)
	}
	if !maps.Equal(s.Partners, partners) {
		tb.Errorf("cookie partners = %v, want %v", s.Partners, partners)
	}
	if s.Created == 0 || s.Updated < s.Created {
		tb.Errorf("cookie timestamps t=%d u=%d", s.Created, s.Updated)
	}
	if c := s.Cookie; c.Domain != "."+p.Site.Cookie.Domain || c.Path != "/" || c.SameSite != "Lax" || c.HTTPOnly || c.Session {
		tb.Errorf("cookie %s: domain %q path %q samesite %q httponly %t session %t; want .%s, /, Lax, readable by the banner, persistent",
			c.Name, c.Domain, c.Path, c.SameSite, c.HTTPOnly, c.Session, p.Site.Cookie.Domain)
	}
}

// MustRecord checks one stored record: site, action, surface, fingerprint, the given
// categories and exactly the given partners.
func MustRecord(tb testing.TB, p *Page, r *consent.Record, action consent.Action, surface consent.Surface, fingerprint string, categories, partners map[string]bool) {
	tb.Helper()
	site := p.Site.Key
	if want := p.Env.PageURL(site); r.URL != want {
		tb.Errorf("record url = %q, want %q", r.URL, want)
	}
	// The page's lang is the site's default language, and the banner follows it.
	if want := p.Site.Languages[0]; r.Language != want {
		tb.Errorf("record language = %q, want %q", r.Language, want)
	}
	if r.Site != site || r.Action != action || r.Surface != surface || r.Fingerprint != fingerprint {
		tb.Errorf("record = site %s action %s surface %s fingerprint %s; want %s %s %s %s",
			r.Site, r.Action, r.Surface, r.Fingerprint, site, action, surface, fingerprint)
	}
	for id, want := range categories {
		if got, ok := r.Choices.Categories[id]; !ok || got != want {
			tb.Errorf("record %s: category %s = %v (present %t), want explicit %t", r.Action, id, got, ok, want)
		}
	}
	if !maps.Equal(r.Choices.Partners, partners) {
		tb.Errorf("record %s: partners = %v, want %v", r.Action, r.Choices.Partners, partners)
	}
	// The browser connects from 127.0.0.1: only its /24 may be stored.
	if r.IPPrefix != "127.0.0.0/24" {
		tb.Errorf("record ip prefix = %q, want 127.0.0.0/24", r.IPPrefix)
	}
	if r.ConsentID == "" || r.ID == "" || r.RecordedAt.IsZero() || !r.ExpiresAt.After(r.RecordedAt) {
		tb.Errorf("record ids or times missing: %+v", r)
	}
}

func allPartners(ids []string, granted bool) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = granted
	}
	return m
}

func equalLists(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
