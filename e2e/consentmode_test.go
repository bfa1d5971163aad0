package e2e

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/wait"
)

// Google Consent Mode v2: the denied defaults come first, and a grant reaches the
// dataLayer before any Google tag runs.

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
			wait.MustUntil(t, when+": the Google tags ran", func() (bool, string) {
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
