package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/wait"
)

// The accessibility tests hold the banner to WCAG 2.2 level AA (docs/architecture.md,
// Requirements) in the real browser: axe-core on the shadow DOM, contrast from
// computed styles in light and dark mode, equal buttons, target sizes, reflow, reduced
// motion, and keyboard-only use.

// forEachSiteLang runs f as a parallel subtest per site and, one after the other,
// per language of that site, with one Env per site.
func forEachSiteLang(t *testing.T, f func(t *testing.T, env *Env, site, lang string)) {
	t.Helper()
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		for _, lang := range env.Config.Sites[site].Languages {
			t.Run(lang, func(t *testing.T) { f(t, env, site, lang) })
		}
	})
}

// layer1Buttons lists the first layer's equal buttons as [action, element].
const layer1Buttons = `['accept-all', 'reject-all', 'customize'].map((a) => [a, layer1(a)])`

// layer2Buttons lists the second layer's equal buttons as [action, element].
const layer2Buttons = `['accept-all', 'reject-all', 'save'].map((a) => [a, inDialog('[data-action="' + a + '"]')])`

// TestA11yBanner checks both layers of the banner in every language of every site:
// no axe-core WCAG 2.2 A/AA violation and contrast of at least 4.5:1 in light and
// dark mode, lang set, a labelled region or modal dialog, equal buttons, 24 px
// targets, reflow at 320 px and at 200 % zoom, and no motion with reduced motion.
func TestA11yBanner(t *testing.T) {
	forEachSiteLang(t, func(t *testing.T, env *Env, site, lang string) {
		p := MustOpenPage(t, env, site)
		p.MustViewport(desktop)
		p.MustMedia("light", false)
		p.MustNavigateLang(lang)
		p.MustBannerVisible()
		p.MustInjectAxe()

		for _, layer := range []struct{ name, buttons, anchor, container string }{
			{"layer 1", layer1Buttons, `layer1('accept-all')`, `[role=region], [role=dialog], section[aria-label], section[aria-labelledby], dialog`},
			{"layer 2", layer2Buttons, `inDialog('[data-action="save"]')`, `dialog`},
		} {
			if layer.name == "layer 2" {
				p.MustClick(`"Customize"`, `layer1('customize')`)
				p.MustDialogOpen()
				// every disclosure unfolded, so that its texts and links are checked too
				MustEval[bool](t, p, `(root().querySelectorAll('dialog details').forEach((d) => { d.open = true; }), true)`)
			}
			where := func(what string) string { return site + " " + lang + " " + layer.name + " " + what }

			// lang: the banner says its language itself, whatever the page says.
			if got := MustEval[string](t, p, `(() => { const el = `+layer.anchor+`; const l = el && el.closest('[lang]'); return l ? l.getAttribute('lang') : (document.querySelector('consent-banner').getAttribute('lang') || '(none)'); })()`); got != lang {
				t.Errorf("%s: the banner's lang is %q, want %q", where(""), got, lang)
			}
			mustLabelledContainer(t, p, where(""), layer.anchor, layer.container)

			for _, scheme := range []Scheme{"light", "dark"} {
				p.MustMedia(scheme, false)
				MustAxe(t, p, where(string(scheme)), scheme != "light")
				MustTextContrast(t, p, where(string(scheme)))
				MustSwitchContrast(t, p, where(string(scheme)))
			}
			p.MustMedia("light", false)

			for _, v := range []Viewport{desktop, mobile, narrow, zoom200} {
				p.MustViewport(v)
				MustEqualButtons(t, p, where(v.Name), layer.buttons)
				MustTargetSize(t, p, where(v.Name))
				MustReflow(t, p, where(v.Name), layer.buttons)
			}
			p.MustViewport(desktop)

			p.MustMedia("light", true)
			MustNoMotion(t, p, where("reduced motion"))
			p.MustMedia("light", false)
		}
	})
}

// mustLabelledContainer fails tb unless the element anchor gives sits in a container
// (selector) with an accessible name: a labelled region for the first layer, a
// labelled modal dialog for the second, so that a screen reader announces what it
// is (part of the WCAG 2.2 AA checks, docs/architecture.md, Requirements).
func mustLabelledContainer(tb testing.TB, p *Page, where, anchor, selector string) {
	tb.Helper()
	got := MustEval[map[string]string](tb, p, `(() => {
  const el = `+anchor+`, c = el && el.closest(`+jsString(selector)+`);
  if (!c) return { error: 'no container matching ' + `+jsString(selector)+` + ' around the buttons' };
  const ids = (c.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean);
  const name = (c.getAttribute('aria-label') || ids.map((id) => { const l = c.getRootNode().getElementById(id); return l ? l.textContent : ''; }).join(' ')).trim();
  return { tag: c.tagName.toLowerCase(), role: c.getAttribute('role') || '', name, modal: String(c.tagName === 'DIALOG' ? c.matches(':modal') : c.getAttribute('aria-modal') === 'true') };
})()`)
	switch {
	case got["error"] != "":
		tb.Errorf("%s: %s", where, got["error"])
	case got["name"] == "":
		tb.Errorf("%s: the banner's <%s role=%q> has no accessible name (aria-label or aria-labelledby)", where, got["tag"], got["role"])
	case got["tag"] == "dialog" && got["modal"] != "true":
		tb.Errorf("%s: the preferences <dialog> is not modal (open it with showModal())", where)
	}
}

// TestA11yKeyboard completes every decision with the keyboard only (real key events:
// Tab, Shift+Tab, Enter, Space, Escape), checks the focus indicator of every banner
// element it passes, that Escape is never consent, and that focus returns after the
// preferences close.
func TestA11yKeyboard(t *testing.T) {
	MustBrowser(t)
	t.Parallel()
	cfg, err := config.Load(sitesFile)
	if err != nil {
		t.Fatal(err)
	}
	const maxTabs = 60
	isAction := func(action string, dialog bool) string {
		return `(a) => !!a && inBanner(a) && a.getAttribute('data-action') === '` + action + `' && !!a.closest('dialog') === ` + map[bool]string{true: "true", false: "false"}[dialog]
	}
	for _, site := range cfg.SiteKeys() {
		t.Run(site, func(t *testing.T) {
			t.Parallel()
			env := MustEnv(t, site)
			open := func(t *testing.T) *Page {
				p := MustOpenPage(t, env, site)
				p.MustFocusEmulation()
				p.MustViewport(desktop)
				p.MustNavigate()
				p.MustBannerVisible()
				return p
			}

			t.Run("accept-all", func(t *testing.T) {
				p := open(t)
				p.MustTabTo(`"Accept all"`, isAction("accept-all", false), false, maxTabs)
				p.MustPress(kb.Enter)
				p.MustBannerHidden()
				s := p.MustCookie(nil)
				if !s.Categories["advertising"] {
					t.Errorf("Enter on \"Accept all\" stored %v, want advertising granted", s.Categories)
				}
				if r := env.MustRecords(t, s.ID, 1)[0]; r.Action != "accept_all" {
					t.Errorf("record action %s, want accept_all", r.Action)
				}
			})

			t.Run("reject-all", func(t *testing.T) {
				p := open(t)
				// past "Reject all" to "Customize", then back with Shift+Tab; Space activates
				p.MustTabTo(`"Customize"`, isAction("customize", false), false, maxTabs)
				p.MustTabTo(`"Reject all"`, isAction("reject-all", false), true, 5)
				p.MustPress(" ")
				p.MustBannerHidden()
				s := p.MustCookie(nil)
				if s.Categories["advertising"] {
					t.Errorf("Space on \"Reject all\" stored %v, want advertising refused", s.Categories)
				}
				if r := env.MustRecords(t, s.ID, 1)[0]; r.Action != "reject_all" {
					t.Errorf("record action %s, want reject_all", r.Action)
				}
			})

			t.Run("customize", func(t *testing.T) {
				p := open(t)
				mark := env.Requests.Mark()
				p.MustTabTo(`"Customize"`, isAction("customize", false), false, maxTabs)
				p.MustPress(kb.Enter)
				p.MustDialogOpen()
				mustFocusInDialog(t, p, "after Enter on \"Customize\"")
				p.MustTabTo("the advertising switch", `(a) => !!a && inBanner(a) && a.getAttribute('data-category') === 'advertising'`, false, maxTabs)
				p.MustPress(" ")
				p.MustWaitJS("Space switched advertising on", `inDialog('input[data-category="advertising"]').checked`)
				p.MustTabTo(`"Save"`, isAction("save", true), false, maxTabs)
				p.MustNoBackendPost(mark)
				p.MustPress(kb.Enter)
				p.MustBannerHidden()
				s := p.MustCookie(nil)
				if !s.Categories["advertising"] {
					t.Errorf("Save stored categories %v, want advertising granted", s.Categories)
				}
				for id, on := range s.Partners {
					if on {
						t.Errorf("Save stored partner %s granted; only the category was switched on", id)
					}
				}
				if r := env.MustRecords(t, s.ID, 1)[0]; r.Action != "custom" {
					t.Errorf("record action %s, want custom", r.Action)
				}
			})

			t.Run("escape", func(t *testing.T) {
				p := open(t)
				mark := env.Requests.Mark()
				p.MustPress(kb.Escape) // on the first layer: nothing happens
				p.MustTabTo(`"Customize"`, isAction("customize", false), false, maxTabs)
				p.MustPress(kb.Enter)
				p.MustDialogOpen()
				mustFocusInDialog(t, p, "after Enter on \"Customize\"")
				p.MustTabTo("the advertising switch", `(a) => !!a && inBanner(a) && a.getAttribute('data-category') === 'advertising'`, false, maxTabs)
				p.MustPress(" ") // a change that Escape must throw away
				p.MustPress(kb.Escape)
				p.MustWaitJS("Escape closed the preferences", `!inDialog('[data-action]')`)
				p.MustBannerVisible()
				if f := p.MustFocus(isAction("customize", false)); !f.Match {
					t.Errorf("after Escape focus is on %s, want back on \"Customize\" where it was", f.Desc)
				}
				// Not a wait: a request that must never come has no event to wait
				// for. The sleep is the time in which one sent on Escape would have
				// reached the server.
				time.Sleep(300 * time.Millisecond)
				p.MustNoConsentCookie("after Escape")
				p.MustNoBackendPost(mark) // Escape is never consent
				if !MustEval[bool](t, p, `window.consent.get() === null`) {
					t.Error("after Escape window.consent.get() is not null")
				}
			})
		})
	}
}

// mustFocusInDialog fails tb unless keyboard focus is inside the open preferences.
func mustFocusInDialog(tb testing.TB, p *Page, when string) {
	tb.Helper()
	var f Focused
	wait.MustUntil(tb, "focus moves into the preferences "+when, func() (bool, string) {
		f = p.MustFocus(`(a) => !!a && inBanner(a) && !!a.closest('dialog[open]')`)
		return f.Match, "focus on " + f.Desc
	})
}

// phone is the screen on which the banner must leave the page usable.
var phone = Viewport{"phone 390×844", 390, 844, true}

// TestA11yFocusNotObscured tabs through a long page with a form, with the first
// layer shown: no focused element of the page may be entirely hidden behind the
// banner (WCAG 2.2 2.4.11 Focus Not Obscured), in every language, on a desktop and
// on a phone.
func TestA11yFocusNotObscured(t *testing.T) {
	forEachSiteLang(t, func(t *testing.T, env *Env, site, lang string) {
		for _, v := range []Viewport{desktop, phone} {
			p := MustOpenPage(t, env, site)
			p.MustFocusEmulation()
			p.MustViewport(v)
			p.MustNavigatePath(FormPath + "?lang=" + lang)
			p.MustBannerVisible()
			var path []string
			seen := map[string]bool{}
			for range 60 {
				p.MustPress(kb.Tab)
				f := p.MustFocus(`() => false`)
				if seen[f.Desc] {
					break // round the page once
				}
				seen[f.Desc] = true
				path = append(path, f.Desc)
				p.mustFocusVisible(f)
				if f.Obscured != "" {
					t.Errorf("%s %s: keyboard focus on %s, which is %s (WCAG 2.4.11)", site, v.Name, f.Desc, f.Obscured)
				}
			}
			all := strings.Join(path, "\n")
			for _, want := range []string{"consent-banner", "f-message", "f-send"} {
				if !strings.Contains(all, want) {
					t.Errorf("%s %s: Tab never reached %s; focus went through %v", site, v.Name, want, path)
				}
			}
			if err := chromedp.Cancel(p.ctx); err != nil {
				t.Logf("close tab: %v", err)
			}
		}
	})
}

// brokenWords lists the words of the first layer's buttons that are set on more than
// one line.
const brokenWords = `['accept-all', 'reject-all', 'customize'].flatMap((a) => {
  const text = layer1(a).firstChild, out = [], re = /\S+/g;
  for (let m; (m = re.exec(text.data)); ) {
    const r = document.createRange();
    r.setStart(text, m.index);
    r.setEnd(text, m.index + m[0].length);
    if (new Set([...r.getClientRects()].map((c) => Math.round(c.top))).size > 1) out.push(m[0]);
  }
  return out;
})`

// TestPageUsableBehindBanner: the first layer is no cookie wall. On a phone it takes
// at most a third of the screen, in every language, without breaking a word of its
// buttons; and the page gets room below its content as high as the layer, so that the
// footer's links scroll clear of it and can be tapped, on a phone and on a desktop.
// After the decision the page's own room is as it was.
func TestPageUsableBehindBanner(t *testing.T) {
	forEachSiteLang(t, func(t *testing.T, env *Env, site, lang string) {
		for _, v := range []Viewport{phone, desktop} {
			p := MustOpenPage(t, env, site)
			p.MustBrowserLanguage(lang)
			p.MustViewport(v)
			p.MustNavigateLang(lang)
			p.MustBannerVisible()
			height := MustEval[float64](t, p, `layer1('accept-all').closest('[role=region]').getBoundingClientRect().height`)
			t.Logf("%s %s %s: first layer %.0f px high, %.0f %% of the screen", site, lang, v.Name, height, 100*height/float64(v.Height))
			if v == phone && height > float64(v.Height)/3 {
				t.Errorf("%s %s: the first layer is %.0f px high, more than a third of the screen", lang, v.Name, height)
			}
			if broken := MustEval[[]string](t, p, brokenWords); len(broken) > 0 {
				t.Errorf("%s %s: the buttons break %q in the middle", lang, v.Name, broken)
			}
			room := MustEval[float64](t, p, `parseFloat(getComputedStyle(document.documentElement).paddingBottom)`)
			if room < 7+height || room >= 7+height+1 {
				t.Errorf("%s %s: the page has %.1f px of room below its content, want its own 7 and the layer's %.1f", lang, v.Name, room, height)
			}
			for _, link := range []string{"imprint", "privacy"} {
				p.mustClick("the footer's #"+link+" link, scrolled to the end of the page",
					`((el) => { scrollTo(0, document.documentElement.scrollHeight); return probe(el, false); })(document.querySelector('footer a[href="#`+link+`"]'))`)
				p.MustWaitJS("the footer's #"+link+" link was followed", `location.hash === '#`+link+`'`)
			}
			p.MustClick(`"Reject all"`, `layer1('reject-all')`)
			p.MustBannerHidden()
			if style := MustEval[string](t, p, `document.documentElement.getAttribute('style')`); style != "padding-bottom: 7px;" {
				t.Errorf("%s %s: after the decision the page's html has style %q, want its own back, %q", lang, v.Name, style, "padding-bottom: 7px;")
			}
			if err := chromedp.Cancel(p.ctx); err != nil {
				t.Logf("close tab: %v", err)
			}
		}
	})
}

// TestPreferencesLayout: while the second layer is open the first layer does not
// peek out from under its backdrop, and in it the names of purposes and partners
// lead: set larger than their descriptions and disclosures, and bold.
func TestPreferencesLayout(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		p := MustOpenPage(t, env, site)
		p.MustViewport(phone)
		p.MustNavigate()
		p.MustBannerVisible()
		p.MustClick(`"Customize"`, `layer1('customize')`)
		p.MustDialogOpen()
		if v := MustEval[string](t, p, `getComputedStyle(layer1('accept-all')).visibility`); v != "hidden" {
			t.Errorf("with the preferences open the first layer is %s, want hidden", v)
		}
		type lead struct {
			What         string
			Name, Detail float64 // font sizes, px
			Weight       int
		}
		leads := MustEval[[]lead](t, p, `(() => {
  const size = (el) => parseFloat(getComputedStyle(el).fontSize);
  const out = [];
  for (const c of root().querySelectorAll('dialog .c')) {
    const name = c.querySelector(':scope > .r label');
    out.push({ what: name.textContent, name: size(name), detail: size(c.querySelector(':scope > p')), weight: +getComputedStyle(name).fontWeight });
    for (const p of c.querySelectorAll('.p')) {
      const n = p.querySelector('label');
      out.push({ what: n.textContent, name: size(n), detail: size(p.querySelector('dl')), weight: +getComputedStyle(n).fontWeight });
    }
  }
  return out;
})()`)
		if len(leads) < 2 {
			t.Fatalf("the preferences list %d purposes and partners", len(leads))
		}
		for _, l := range leads {
			if l.Name <= l.Detail || l.Weight < 600 {
				t.Errorf("%q is set at %.1f px, weight %d, its description at %.1f px: the name must lead, larger and bold", l.What, l.Name, l.Weight, l.Detail)
			}
		}
		p.MustClick(`"Close"`, `inDialog('[data-action="close"]')`)
		p.MustWaitJS("the first layer shows again", `getComputedStyle(layer1('accept-all')).visibility === 'visible'`)
	})
}
