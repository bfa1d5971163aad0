package e2e

import "testing"

// Cookies blocked: a browser that refuses first-party cookies still gets a working
// banner for the page it is on.

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
