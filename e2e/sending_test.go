package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/wait"
)

// Sending the decision: when the backend is down or the connection fails, the
// choice applies at once and is sent again later, as chosen, a bounded number of
// times; a decision consentd refused is never sent again.

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
			wait.MustUntil(t, "the banner tried to send the decision", func() (bool, string) {
				return postsSince(env, mark) > 0, fmt.Sprint(env.Requests.Backend(mark))
			})
			// The flag may be written only once the failure is known: wait for it, since
			// a reload before that would cancel the failed request's handling.
			wait.MustUntil(t, "the cookie flags the decision as not sent yet", func() (bool, string) {
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
			wait.MustUntil(t, "the cookie's not-sent flag is cleared", func() (bool, string) {
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
		wait.MustUntil(t, "the refused decision's pending flag is cleared", func() (bool, string) {
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
			wait.MustUntil(t, fmt.Sprintf("attempt %d failed", n), func() (bool, string) {
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
		wait.MustUntil(t, "the fifth failure is the last: the flag is cleared", func() (bool, string) {
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
