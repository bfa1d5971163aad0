package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/wait"
)

// The page's JavaScript API: window.consent and the banner's DOM events.

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
		wait.MustUntil(t, "consent:change and on('change') fired", func() (bool, string) {
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
