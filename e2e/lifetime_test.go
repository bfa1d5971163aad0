package e2e

import (
	"math"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"

	consent "github.com/mixvoip/consentd"
)

// Lifetimes and expiry: how long the browser and the store keep a consent and a
// refusal, and what the banner does once the cookie is gone.

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
