package e2e

import (
	"testing"

	consent "github.com/mixvoip/consentd"
)

// The preferences (the second layer): the floating button that opens them after a
// decision, "Customize" opening them once, and a partner's switch going with its
// purpose's.

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
