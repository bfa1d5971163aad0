package e2e

import (
	"testing"

	consent "github.com/mixvoip/consentd"
)

// Global Privacy Control: the browser's signal is a refusal without a banner, which
// the visitor's own choice overrides.

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
