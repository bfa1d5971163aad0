package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/wait"
)

// Embeds with placeholders: gated iframes and images wait behind a placeholder that
// offers to allow their partner once or always.

// embedIDs are the /embeds page's embeds of the site's embed partner.
var embedIDs = map[string]string{"embed-video": "/video", "embed-img": "/pixel.gif"}

// mustPlaceholders waits until every gated embed of the /embeds page shows its
// placeholder and checks what each offers.
func mustPlaceholders(tb testing.TB, p *Page, when string) {
	tb.Helper()
	partner := p.Env.EmbedPartner(p.Site.Key)
	name := p.Site.Partner(partner).Name
	for _, id := range []string{"embed-video", "embed-img", "embed-disabled"} {
		var st EmbedState
		wait.MustUntil(tb, when+": "+id+" has a placeholder", func() (bool, string) {
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
		wait.MustUntil(tb, when+": "+id+" loads", func() (bool, string) {
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
