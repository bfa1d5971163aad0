package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"testing"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/wait"
)

// Withdrawal: switching a purpose off after a consent deletes what the revoked
// partners stored and stops their tags.

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
		wait.MustUntil(t, "the partners' tags set their cookies", func() (bool, string) {
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
