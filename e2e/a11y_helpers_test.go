package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// axeFile is axe-core's browser build, installed by `npm ci` (package.json pins it).
const axeFile = "../node_modules/axe-core/axe.min.js"

// axeTags are the rule sets checked: WCAG 2.0, 2.1 and 2.2, levels A and AA.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"}

// minTextContrast is the banner's rule for all of its text, consent.MinContrast, which
// `consentd check` holds a site's theme to: 4.5:1 (stricter than WCAG 1.4.3, which
// allows 3:1 for large text).
const minTextContrast = 4.5

// minUIContrast is WCAG 1.4.11: switches and focus indicators against what is next to them.
const minUIContrast = 3.0

// minTarget is WCAG 2.2 2.5.8 Target Size (Minimum), level AA: every button, switch
// and link at least 24×24 CSS px.
const minTarget = 24.0

// axeURL serves axe-core to the pages from a local server of this test binary: a
// script the browser fetches compiles much faster than the same text sent through
// Runtime.evaluate (about 0.1 s instead of 0.8 s per page).
var axeURL = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(axeFile)
	if errors.Is(err, fs.ErrNotExist) {
		abs, _ := filepath.Abs(axeFile)
		return "", fmt.Errorf("%s is missing: run `npm ci` in the repository root (axe-core is a devDependency in package.json; `make test` does it)", abs)
	}
	if err != nil {
		return "", err
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(b)
	}))
	// The server lives as long as the test binary.
	return srv.URL + "/axe.min.js", nil
})

// a11yPrelude adds to jsPrelude what the accessibility checks evaluate in the page.
const a11yPrelude = `
const up = (el) => el.parentElement || (el.getRootNode() instanceof ShadowRoot ? el.getRootNode().host : null);
const deepActive = () => { let a = document.activeElement; while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement; return a; };
const inBanner = (el) => !!el && !!root() && el.getRootNode() === root();
const describe = (el) => {
  if (!el) return 'nothing';
  if (el === document.body) return 'the page body';
  let s = el.tagName.toLowerCase();
  for (const a of ['data-action', 'data-category', 'data-partner', 'role', 'class', 'id', 'href']) if (el.hasAttribute(a)) s += '[' + a + '="' + el.getAttribute(a).slice(0, 40) + '"]';
  const txt = (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 40);
  if (txt) s += ' "' + txt + '"';
  return inBanner(el) ? 'consent-banner » ' + s : 'page » ' + s;
};
// Any CSS colour as [r, g, b, a], through a canvas pixel: handles every syntax.
const rgba = (c) => {
  const cv = rgba.cv || (rgba.cv = document.createElement('canvas'));
  cv.width = cv.height = 1;
  const x = cv.getContext('2d', { willReadFrequently: true });
  x.clearRect(0, 0, 1, 1); x.fillStyle = '#000'; x.fillStyle = c; x.fillRect(0, 0, 1, 1);
  const d = x.getImageData(0, 0, 1, 1).data;
  return [d[0], d[1], d[2], d[3] / 255];
};
const over = (f, b) => [0, 1, 2].map((i) => f[i] * f[3] + b[i] * (1 - f[3])).concat([1]);
const hex = (c) => '#' + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');
const lum = (c) => { const l = c.slice(0, 3).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2]; };
const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
// The opaque colour behind el: its own and its ancestors' backgrounds composed,
// across the shadow boundary, over white; null with a reason when an image is there.
const background = (el) => {
  const layers = [];
  for (let e = el; e; e = up(e)) {
    const cs = getComputedStyle(e);
    if (cs.backgroundImage !== 'none') return { why: 'background image on ' + describe(e) };
    const c = rgba(cs.backgroundColor);
    if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  let bg = [255, 255, 255, 1];
  for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
  return { bg };
};
const shown = (el) => { const r = el.getBoundingClientRect(); const cs = getComputedStyle(el); return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && el.checkVisibility({ opacityProperty: true, contentVisibilityAuto: true }); };
const textContrast = (el) => {
  const b = background(el);
  if (!b.bg) return { el: describe(el), why: b.why };
  const fg = over(rgba(getComputedStyle(el).color), b.bg);
  return { el: describe(el), fg: hex(fg), bg: hex(b.bg), ratio: ratio(fg, b.bg) };
};
// Every shown element of the banner with text of its own.
const texts = () => {
  const out = new Set();
  const w = document.createTreeWalker(root(), NodeFilter.SHOW_TEXT);
  for (let n; (n = w.nextNode());) {
    const el = n.parentElement;
    if (n.data.trim() && el && el.tagName !== 'STYLE' && !el.disabled && shown(el)) out.add(el);
  }
  return [...out];
};
const interactive = () => [...root().querySelectorAll('button, a[href], input, select, textarea, summary, [role=button], [role=switch], [role=link], [role=checkbox], [tabindex]:not([tabindex="-1"])')].filter(shown);
const focusRing = (el) => {
  const cs = getComputedStyle(el);
  const outline = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0;
  if (!outline && cs.boxShadow === 'none') return 'no outline and no box-shadow';
  if (outline) {
    const b = background(up(el));
    if (b.bg) {
      const c = over(rgba(cs.outlineColor), b.bg);
      const r = ratio(c, b.bg);
      if (r < 3) return 'outline ' + hex(c) + ' on ' + hex(b.bg) + ' has contrast ' + r.toFixed(2) + ':1, want at least 3:1';
    }
  }
  return '';
};
`

// evalA11y evaluates expr with jsPrelude and a11yPrelude in the page, awaiting a promise.
func evalA11y[T any](p *Page, expr string) (T, error) {
	return chromedp.Run(p.ctx, chromedp.Evaluate[T](`(async () => {`+jsPrelude+a11yPrelude+`return (`+expr+`); })()`, chromedp.EvalAwaitPromise))
}

// MustA11yEval is MustEval with the accessibility helpers of a11yPrelude.
func MustA11yEval[T any](tb testing.TB, p *Page, expr string) T {
	tb.Helper()
	v, err := evalA11y[T](p, expr)
	if err != nil {
		tb.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// Scheme is a value of prefers-color-scheme.
type Scheme string

// Viewport is a size of the page in CSS pixels.
type Viewport struct {
	Name          string
	Width, Height int64
	Mobile        bool
}

var (
	desktop = Viewport{"desktop 1280×800", 1280, 800, false}
	mobile  = Viewport{"mobile 360×740", 360, 740, true}
	narrow  = Viewport{"reflow 320 px", 320, 640, true}
	zoom200 = Viewport{"200 % zoom (640×400 CSS px)", 640, 400, false}
)

// MustViewport resizes the page's layout viewport.
func (p *Page) MustViewport(v Viewport) {
	p.tb.Helper()
	if _, err := chromedp.Call(p.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: v.Width, Height: v.Height, DeviceScaleFactor: 1, Mobile: v.Mobile,
	}); err != nil {
		p.tb.Fatalf("set viewport %s: %v", v.Name, err)
	}
}

// MustMedia emulates prefers-color-scheme and prefers-reduced-motion ("" = the default),
// then finishes the transitions this starts in the banner, so that computed colours are final.
func (p *Page) MustMedia(scheme Scheme, reducedMotion bool) {
	p.tb.Helper()
	motion := "no-preference"
	if reducedMotion {
		motion = "reduce"
	}
	if scheme == "" {
		scheme = "light"
	}
	if _, err := chromedp.Call(p.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{
		{Name: "prefers-color-scheme", Value: string(scheme)},
		{Name: "prefers-reduced-motion", Value: motion},
	}}); err != nil {
		p.tb.Fatalf("emulate %s, reduced motion %t: %v", scheme, reducedMotion, err)
	}
	p.mustSettle()
}

// mustSettle finishes the banner's running transitions and animations.
func (p *Page) mustSettle() {
	p.tb.Helper()
	MustA11yEval[bool](p.tb, p, `(() => { const r = root(); if (r) for (const a of r.getAnimations ? r.getAnimations() : []) a.finish(); if (r) for (const el of r.querySelectorAll('*')) for (const a of el.getAnimations({ subtree: true })) a.finish(); return true; })()`)
}

// MustFocusEmulation makes the tab behave as the focused window, as a visitor's would be:
// without it, tabs that run in parallel compete for focus and :focus-visible.
func (p *Page) MustFocusEmulation() {
	p.tb.Helper()
	if _, err := chromedp.Call(p.ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		p.tb.Fatalf("focus emulation: %v", err)
	}
}

// MustNavigateLang opens the site's home page with <html lang=lang>.
func (p *Page) MustNavigateLang(lang string) {
	p.tb.Helper()
	u := p.Env.PageURL(p.Site.Key) + "?lang=" + lang
	if err := chromedp.Do(p.ctx, chromedp.Navigate(u)); err != nil {
		p.tb.Fatalf("navigate to %s: %v", u, err)
	}
}

// MustPress sends one key (a kb constant or a character) as real key events.
func (p *Page) MustPress(key string, mods ...chromedp.Modifier) {
	p.tb.Helper()
	if err := chromedp.Do(p.ctx, chromedp.KeyEvent(key, chromedp.KeyModifiers(mods...))); err != nil {
		p.tb.Fatalf("press %q: %v", key, err)
	}
}

// MustInjectAxe loads axe-core into the page.
func (p *Page) MustInjectAxe() {
	p.tb.Helper()
	u, err := axeURL()
	if err != nil {
		p.tb.Fatal(err)
	}
	ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`new Promise((resolve) => {
  const s = document.createElement('script');
  s.src = `+jsString(u)+`;
  s.onload = () => resolve(typeof window.axe === 'object' && typeof window.axe.run === 'function');
  s.onerror = () => resolve(false);
  document.head.append(s);
})`, chromedp.EvalAwaitPromise))
	if err != nil {
		p.tb.Fatalf("inject axe-core: %v", err)
	}
	if !ok {
		p.tb.Fatalf("axe-core from %s did not load or did not define window.axe", u)
	}
}

// AxeNode is one element a rule looked at.
type AxeNode struct {
	Target  []any  `json:"target"` // selectors; a nested list crosses a shadow root
	HTML    string `json:"html"`
	Summary string `json:"failureSummary"`
	Why     string `json:"why"`   // for incomplete color-contrast: axe's reason
	Text    *Ratio `json:"ratio"` // for incomplete color-contrast: our own computation
}

// AxeRule is one rule's result.
type AxeRule struct {
	ID     string    `json:"id"`
	Impact string    `json:"impact"`
	Help   string    `json:"help"`
	URL    string    `json:"helpUrl"`
	Nodes  []AxeNode `json:"nodes"`
}

// Ratio is a contrast computed from computed styles.
type Ratio struct {
	El    string  `json:"el"`
	FG    string  `json:"fg"`
	BG    string  `json:"bg"`
	Ratio float64 `json:"ratio"`
	Why   string  `json:"why"` // set when it cannot be computed
}

// AxeResult is what MustAxe needs of axe.run's results.
type AxeResult struct {
	Violations []AxeRule `json:"violations"`
	Incomplete []AxeRule `json:"incomplete"`
	// ContrastNodes counts the banner elements color-contrast passed, failed or
	// could not decide: zero means the rule never saw the shadow content.
	ContrastNodes int `json:"contrastNodes"`
}

// MustAxe runs axe-core's WCAG 2.x A/AA rules on the banner (host element and shadow
// tree) and fails tb for each violation, for a color-contrast rule that examined
// nothing, and for each color-contrast node axe could not decide and the computed
// styles do not clear at 4.5:1. Other incomplete results are logged. With
// contrastOnly it runs color-contrast alone (for a second colour scheme).
func MustAxe(tb testing.TB, p *Page, where string, contrastOnly bool) {
	tb.Helper()
	mustAxe(tb, p, where, `document.querySelector('consent-banner')`, "the banner's shadow DOM", contrastOnly)
}

// MustAxeDocument is MustAxe on the whole document: for a page consentd serves
// itself, such as the visitor's page.
func MustAxeDocument(tb testing.TB, p *Page, where string, contrastOnly bool) {
	tb.Helper()
	mustAxe(tb, p, where, `document`, "the page", contrastOnly)
}

// mustAxe runs axe as MustAxe says on the element (or document) that the JS
// expression target gives, which what names in messages.
func mustAxe(tb testing.TB, p *Page, where, target, what string, contrastOnly bool) {
	tb.Helper()
	tags, err := json.Marshal(axeTags)
	if err != nil {
		tb.Fatal(err)
	}
	only := `{ type: 'tag', values: ` + string(tags) + ` }`
	if contrastOnly {
		only = `{ type: 'rule', values: ['color-contrast'] }`
	}
	res := MustA11yEval[AxeResult](tb, p, `(async () => {
  const host = `+target+`;
  if (!host) return { violations: [{ id: 'nothing-to-check', help: 'nothing to check: ' + `+jsString(what)+` + ' is not in the page', nodes: [] }], incomplete: [], contrastNodes: 0 };
  const r = await axe.run(host, { runOnly: `+only+`, resultTypes: ['violations', 'incomplete'] });
  const pick = (rule) => ({ id: rule.id, impact: rule.impact || '', help: rule.help, helpUrl: rule.helpUrl, nodes: rule.nodes.map((n) => ({ target: n.target, html: n.html, failureSummary: n.failureSummary || '' })) });
  const find = (target) => { let el = null, scope = document; for (const s of target) { el = scope.querySelector(s); if (!el) return null; scope = el.shadowRoot || el; } return el; };
  const cc = (list) => (list.find((x) => x.id === 'color-contrast') || { nodes: [] }).nodes.length;
  const incomplete = r.incomplete.map((rule) => {
    const o = pick(rule);
    if (rule.id === 'color-contrast') o.nodes.forEach((n, i) => {
      const a = rule.nodes[i].any.concat(rule.nodes[i].all, rule.nodes[i].none).find((c) => c.data && c.data.messageKey);
      n.why = a ? a.data.messageKey + (a.message ? ': ' + a.message : '') : '';
      const el = find(rule.nodes[i].target.flat());
      n.ratio = el ? textContrast(el) : { el: JSON.stringify(n.target), why: 'element not found' };
    });
    return o;
  });
  return { violations: r.violations.map(pick), incomplete, contrastNodes: cc(r.passes) + cc(r.violations) + cc(r.incomplete) };
})()`)
	for _, v := range res.Violations {
		var b strings.Builder
		fmt.Fprintf(&b, "%s: axe %s (%s): %s — %s", where, v.ID, v.Impact, v.Help, v.URL)
		for _, n := range v.Nodes {
			fmt.Fprintf(&b, "\n    target %v: %s\n      %s", n.Target, trimHTML(n.HTML), strings.ReplaceAll(n.Summary, "\n", "\n      "))
		}
		tb.Error(b.String())
	}
	if res.ContrastNodes == 0 {
		tb.Errorf("%s: axe's color-contrast rule examined no element of %s: contrast is not checked", where, what)
	}
	for _, v := range res.Incomplete {
		for _, n := range v.Nodes {
			if v.ID != "color-contrast" {
				tb.Logf("%s: axe %s needs review (%s) at %v: %s", where, v.ID, v.Help, n.Target, strings.ReplaceAll(n.Summary, "\n", " "))
				continue
			}
			switch r := n.Text; {
			case r == nil || r.Why != "":
				tb.Errorf("%s: axe color-contrast could not decide %v (%s) and neither can the computed styles (%v): check by hand or make the background a plain colour", where, n.Target, n.Why, r)
			case r.Ratio < minTextContrast:
				tb.Errorf("%s: contrast of %s is %.2f:1 (%s on %s), want at least %.1f:1 (axe could not decide: %s)", where, r.El, r.Ratio, r.FG, r.BG, minTextContrast, n.Why)
			}
		}
	}
}

func trimHTML(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

// MustTextContrast fails tb for each shown text of the banner under 4.5:1, computed
// from the computed colour over the composed backgrounds.
func MustTextContrast(tb testing.TB, p *Page, where string) {
	tb.Helper()
	for _, r := range MustA11yEval[[]Ratio](tb, p, `texts().map(textContrast)`) {
		if r.Why != "" {
			tb.Errorf("%s: contrast of %s cannot be computed (%s): make the background a plain colour", where, r.El, r.Why)
		} else if r.Ratio < minTextContrast {
			tb.Errorf("%s: text contrast of %s is %.2f:1 (%s on %s), want at least %.1f:1", where, r.El, r.Ratio, r.FG, r.BG, minTextContrast)
		}
	}
}

// MustSwitchContrast fails tb for each enabled switch whose track is under 3:1 against
// the background around it (WCAG 1.4.11: the visual state must be perceivable).
func MustSwitchContrast(tb testing.TB, p *Page, where string) {
	tb.Helper()
	for _, r := range MustA11yEval[[]Ratio](tb, p, `[...root().querySelectorAll('input[type=checkbox], [role=switch]')].filter((el) => !el.disabled && shown(el)).map((el) => {
  const b = background(up(el));
  if (!b.bg) return { el: describe(el), why: b.why };
  const cs = getComputedStyle(el);
  // a switch shows its state by its track (background) or by its border
  const track = over(rgba(cs.backgroundColor), b.bg), border = over(rgba(cs.borderTopColor), b.bg);
  const best = parseFloat(cs.borderTopWidth) > 0 ? Math.max(ratio(track, b.bg), ratio(border, b.bg)) : ratio(track, b.bg);
  return { el: describe(el) + (el.checked ? ' (on)' : ' (off)'), fg: hex(track), bg: hex(b.bg), ratio: best };
})`) {
		if r.Why != "" {
			tb.Errorf("%s: contrast of %s cannot be computed (%s)", where, r.El, r.Why)
		} else if r.Ratio < minUIContrast {
			tb.Errorf("%s: switch %s has contrast %.2f:1 (%s on %s), want at least %.0f:1 (WCAG 1.4.11)", where, r.El, r.Ratio, r.FG, r.BG, minUIContrast)
		}
	}
}

// ButtonStyle is what must match between the equal buttons.
type ButtonStyle struct {
	Action     string  `json:"action"`
	Missing    bool    `json:"missing"`
	Tag        string  `json:"tag"`
	W          float64 `json:"w"`
	H          float64 `json:"h"`
	Top        float64 `json:"top"`
	FontWeight string  `json:"fontWeight"`
	FontSize   string  `json:"fontSize"`
	Color      string  `json:"color"`
	Background string  `json:"background"`
	Border     string  `json:"border"`
	Decoration string  `json:"decoration"`
}

// MustEqualButtons fails tb unless the buttons that expr lists (an array of
// [action, element]) are real buttons of equal size (within 1 px), weight and colours.
func MustEqualButtons(tb testing.TB, p *Page, where, expr string) {
	tb.Helper()
	bs := MustA11yEval[[]ButtonStyle](tb, p, `(`+expr+`).map(([action, el]) => {
  if (!el) return { action, missing: true };
  const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
  return { action, tag: el.tagName.toLowerCase(), w: r.width, h: r.height, top: r.top, fontWeight: cs.fontWeight, fontSize: cs.fontSize,
    color: hex(rgba(cs.color)), background: hex(rgba(cs.backgroundColor)) + (rgba(cs.backgroundColor)[3] < 1 ? ' (alpha ' + rgba(cs.backgroundColor)[3].toFixed(2) + ')' : ''),
    border: cs.borderTopWidth + ' ' + cs.borderTopStyle + ' ' + hex(rgba(cs.borderTopColor)), decoration: cs.textDecorationLine };
})`)
	if len(bs) == 0 {
		tb.Fatalf("%s: no buttons to compare", where)
	}
	for _, b := range bs {
		if b.Missing {
			tb.Errorf("%s: no %q button", where, b.Action)
			return
		}
		if b.Tag != "button" {
			tb.Errorf("%s: %q is a <%s>, want a real <button>", where, b.Action, b.Tag)
		}
	}
	ref := bs[0]
	for _, b := range bs[1:] {
		if d := b.W - ref.W; d > 1 || d < -1 {
			tb.Errorf("%s: %q is %.1f px wide, %q %.1f px: want equal width (within 1 px)", where, b.Action, b.W, ref.Action, ref.W)
		}
		if d := b.H - ref.H; d > 1 || d < -1 {
			tb.Errorf("%s: %q is %.1f px high, %q %.1f px: want equal height (within 1 px)", where, b.Action, b.H, ref.Action, ref.H)
		}
		for _, f := range []struct{ name, a, b string }{
			{"font-weight", ref.FontWeight, b.FontWeight}, {"font-size", ref.FontSize, b.FontSize},
			{"text colour", ref.Color, b.Color}, {"background colour", ref.Background, b.Background},
			{"border", ref.Border, b.Border}, {"text-decoration", ref.Decoration, b.Decoration},
		} {
			if f.a != f.b {
				tb.Errorf("%s: %s of %q is %s, of %q %s: want the same", where, f.name, b.Action, f.b, ref.Action, f.a)
			}
		}
	}
}

// Box is an element's size.
type Box struct {
	El string  `json:"el"`
	W  float64 `json:"w"`
	H  float64 `json:"h"`
}

// MustTargetSize fails tb for each shown button, switch or link of the banner smaller
// than 24×24 CSS px.
func MustTargetSize(tb testing.TB, p *Page, where string) {
	tb.Helper()
	for _, b := range MustA11yEval[[]Box](tb, p, `interactive().map((el) => { const r = el.getBoundingClientRect(); return { el: describe(el), w: r.width, h: r.height }; })`) {
		if b.W < minTarget-0.01 || b.H < minTarget-0.01 {
			tb.Errorf("%s: target %s is %.1f×%.1f CSS px, want at least %.0f×%.0f", where, b.El, b.W, b.H, minTarget, minTarget)
		}
	}
}

// MustReflow fails tb if the page or any part of the banner scrolls or sticks out
// horizontally (WCAG 1.4.10), or if one of the buttons expr lists (an array of
// [action, element]) cannot be clicked.
func MustReflow(tb testing.TB, p *Page, where, expr string) {
	tb.Helper()
	problems := MustA11yEval[[]string](tb, p, `(() => {
  const out = [], de = document.documentElement, vw = de.clientWidth;
  if (de.scrollWidth > de.clientWidth) out.push('the page scrolls horizontally: scrollWidth ' + de.scrollWidth + ' > clientWidth ' + de.clientWidth);
  for (const el of root().querySelectorAll('*')) {
    if (el.tagName === 'STYLE' || !shown(el)) continue;
    const cs = getComputedStyle(el), r = el.getBoundingClientRect();
    if (cs.overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 1) out.push(describe(el) + ' scrolls horizontally: scrollWidth ' + el.scrollWidth + ' > clientWidth ' + el.clientWidth);
    if (r.left < -0.5 || r.right > vw + 0.5) out.push(describe(el) + ' sticks out of the ' + vw + ' px viewport: x ' + r.left.toFixed(1) + '…' + r.right.toFixed(1));
  }
  for (const [action, el] of `+expr+`) {
    const s = probe(el, true).state;
    if (s !== 'ok') out.push('"' + action + '" cannot be clicked: ' + s);
  }
  return out;
})()`)
	for _, s := range problems {
		tb.Errorf("%s: %s", where, s)
	}
}

// MustNoMotion fails tb for each banner element or pseudo-element that still
// transitions or animates with prefers-reduced-motion: reduce.
func MustNoMotion(tb testing.TB, p *Page, where string) {
	tb.Helper()
	for _, s := range MustA11yEval[[]string](tb, p, `(() => {
  const out = [], secs = (v) => v.split(',').map((x) => x.trim().endsWith('ms') ? parseFloat(x) / 1000 : parseFloat(x));
  const els = [document.querySelector('consent-banner'), ...root().querySelectorAll('*')];
  for (const el of els) for (const pseudo of [null, '::before', '::after', '::marker', '::backdrop']) {
    const cs = getComputedStyle(el, pseudo);
    if (pseudo && pseudo !== '::backdrop' && pseudo !== '::marker' && (cs.content === 'none' || cs.content === 'normal')) continue;
    if (pseudo === '::backdrop' && !(el.matches && el.matches(':modal'))) continue;
    const name = describe(el) + (pseudo || '');
    if (cs.transitionProperty !== 'none' && secs(cs.transitionDuration).some((d) => d > 0)) out.push(name + ': transition ' + cs.transitionProperty + ' ' + cs.transitionDuration);
    if (cs.animationName !== 'none' && secs(cs.animationDuration).some((d) => d > 0)) out.push(name + ': animation ' + cs.animationName + ' ' + cs.animationDuration);
  }
  return [...new Set(out)];
})()`) {
		tb.Errorf("%s: with prefers-reduced-motion: reduce, %s", where, s)
	}
}

// Focused is the element that has keyboard focus, through shadow roots.
type Focused struct {
	Desc     string `json:"desc"`
	InBanner bool   `json:"inBanner"`
	Match    bool   `json:"match"`
	Visible  bool   `json:"focusVisible"` // matches :focus-visible
	Ring     string `json:"ring"`         // why the focus indicator is not good enough, if it is not
	Obscured string `json:"obscured"`     // why a page element is hidden by the banner, if it is
}

// focusedExpr reads Focused; match is a JS function of the focused element.
func focusedExpr(match string) string {
	return `(() => {
  const a = deepActive(), m = (` + match + `)(a);
  const f = { desc: describe(a), inBanner: inBanner(a), match: !!m, focusVisible: !!a && a.matches(':focus-visible'), ring: '', obscured: '' };
  if (f.inBanner) f.ring = focusRing(a);
  else if (a && a !== document.body && root()) {
    // WCAG 2.4.11: a focused element of the page must not be entirely hidden by the banner
    const r = a.getBoundingClientRect(), pts = [];
    for (const fx of [0.05, 0.5, 0.95]) for (const fy of [0.1, 0.5, 0.9]) pts.push([r.left + fx * r.width, r.top + fy * r.height]);
    const inside = pts.filter(([x, y]) => x >= 0 && y >= 0 && x < innerWidth && y < innerHeight);
    const host = document.querySelector('consent-banner');
    if (inside.length === 0) f.obscured = 'outside the viewport';
    else if (inside.every(([x, y]) => document.elementFromPoint(x, y) === host)) f.obscured = 'entirely covered by the banner';
  }
  return f;
})()`
}

// MustTabTo presses Tab (Shift+Tab with back) until the focused element satisfies
// match (a JS function of the element), at most max times. It checks the focus
// indicator of every banner element it passes and returns the path.
func (p *Page) MustTabTo(what, match string, back bool, max int) []Focused {
	p.tb.Helper()
	var path []Focused
	var mods []chromedp.Modifier
	if back {
		mods = append(mods, chromedp.ModifierShift)
	}
	for range max {
		p.MustPress("\t", mods...)
		f := MustA11yEval[Focused](p.tb, p, focusedExpr(match))
		path = append(path, f)
		p.mustFocusVisible(f)
		if f.Match {
			return path
		}
	}
	p.tb.Fatalf("%d × %s did not reach %s; focus went through:\n  %s", max, keyName(back), what, strings.Join(descs(path), "\n  "))
	return nil
}

// mustFocusVisible fails tb if a banner element focused by keyboard has no visible
// focus indicator.
func (p *Page) mustFocusVisible(f Focused) {
	p.tb.Helper()
	if !f.InBanner {
		return
	}
	if !f.Visible {
		p.tb.Errorf("keyboard focus on %s does not match :focus-visible", f.Desc)
	}
	if f.Ring != "" {
		p.tb.Errorf("keyboard focus on %s is not visible: %s", f.Desc, f.Ring)
	}
}

// MustFocus returns the focused element, checked against match.
func (p *Page) MustFocus(match string) Focused {
	p.tb.Helper()
	return MustA11yEval[Focused](p.tb, p, focusedExpr(match))
}

func keyName(back bool) string {
	if back {
		return "Shift+Tab"
	}
	return "Tab"
}

func descs(path []Focused) []string {
	out := make([]string, len(path))
	for i, f := range path {
		out[i] = f.Desc
	}
	return out
}

// MustNoConsentCookie fails tb if the browser holds the site's consent cookie.
func (p *Page) MustNoConsentCookie(when string) {
	p.tb.Helper()
	res, err := chromedp.Call(p.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{p.Env.PageURL(p.Site.Key)}})
	if err != nil {
		p.tb.Fatalf("read cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == p.Site.Cookie.Name {
			p.tb.Errorf("%s: the %s cookie was set (%s): that is a decision", when, c.Name, c.Value)
		}
	}
}
