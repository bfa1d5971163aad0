package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/wait"
)

// Page is one tab in a fresh browser context (its own cookies and cache) on one
// site of an Env.
type Page struct {
	tb   testing.TB
	ctx  context.Context
	Env  *Env
	Site *consent.Site

	mu         sync.Mutex
	exceptions []string
}

// MustOpenPage opens a tab in a new browser context for site. When tb ends it fails
// tb if any page in the tab threw an uncaught exception, then closes the context.
func MustOpenPage(tb testing.TB, env *Env, site string) *Page {
	tb.Helper()
	p := MustOpenTab(tb, site)
	p.Env, p.Site = env, env.Config.Sites[site]
	// a visitor whose browser speaks the site's default language, as most do
	p.MustBrowserLanguage(p.Site.Languages[0])
	return p
}

// MustOpenTab opens a tab in a new browser context, for a page that is none of an
// Env's sites; what names it in failures. When tb ends it fails tb if any page in
// the tab threw an uncaught exception, then closes the context.
func MustOpenTab(tb testing.TB, what string) *Page {
	tb.Helper()
	parent := MustBrowser(tb)
	// A hang in the browser fails the case at the test's deadline, saying where it
	// hung, before go test stops the binary; no bound of its own that a busy machine
	// could overrun.
	ctx, cancelTimeout := wait.Context(tb, parent)
	ctx, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	tb.Cleanup(cancelTimeout)
	tb.Cleanup(cancel)
	p := &Page{tb: tb, ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*runtime.EventExceptionThrown); ok {
			p.mu.Lock()
			p.exceptions = append(p.exceptions, exceptionText(ev.ExceptionDetails))
			p.mu.Unlock()
		}
	}); err != nil {
		tb.Fatalf("open tab: %v", err)
	}
	tb.Cleanup(func() {
		// A round trip, so that every event sent before it has been handled.
		_, _ = chromedp.Run(ctx, chromedp.Evaluate[int](`1`))
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.exceptions {
			tb.Errorf("uncaught JavaScript exception on %s: %s", what, e)
		}
	})
	return p
}

// MustBrowserLanguage makes the tab's browser prefer lang: its Accept-Language header
// and navigator.languages.
func (p *Page) MustBrowserLanguage(lang string) {
	p.tb.Helper()
	v, err := chromedp.CallBrowser(p.ctx, browser.GetVersion, cdp.Empty{})
	if err == nil {
		_, err = chromedp.Call(p.ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: v.UserAgent, AcceptLanguage: lang})
	}
	if err != nil {
		p.tb.Fatalf("browser language %s: %v", lang, err)
	}
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "(no details)"
	}
	s := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		s += " " + d.Exception.Description
	}
	return fmt.Sprintf("%s (%s:%d:%d)", s, d.URL, d.LineNumber+1, d.ColumnNumber+1)
}

// MustNavigate opens the site's home page and waits for its load event.
func (p *Page) MustNavigate() {
	p.tb.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Navigate(p.Env.PageURL(p.Site.Key))); err != nil {
		p.tb.Fatalf("navigate to %s: %v", p.Env.PageURL(p.Site.Key), err)
	}
}

// MustReload reloads the page and waits for its load event.
func (p *Page) MustReload() {
	p.tb.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Reload()); err != nil {
		p.tb.Fatalf("reload: %v", err)
	}
}

// jsPrelude defines the helpers that every evaluated expression may use: the
// banner's open shadow root, its first-layer and dialog buttons, and a probe that
// tells whether a real click at an element's centre would reach it.
const jsPrelude = `
const root = () => { const h = document.querySelector('consent-banner'); return h && h.shadowRoot; };
const layer1 = (action) => { const r = root(); return r ? [...r.querySelectorAll('[data-action="' + action + '"]')].find((b) => !b.closest('dialog')) || null : null; };
const inDialog = (sel) => { const r = root(); return r ? r.querySelector('dialog[open] ' + sel) : null; };
const probe = (el, scroll) => {
  if (!el) return { state: 'missing' };
  if (scroll) el.scrollIntoView({ block: 'center', inline: 'center' });
  const r = el.getBoundingClientRect();
  const cs = getComputedStyle(el);
  if (r.width == 0 || r.height == 0 || cs.visibility == 'hidden' || cs.display == 'none') return { state: 'invisible' };
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  if (x < 0 || y < 0 || x > innerWidth || y > innerHeight) return { state: 'offscreen' };
  let hit = document.elementFromPoint(x, y);
  while (hit && hit.shadowRoot) {
    const inner = hit.shadowRoot.elementFromPoint(x, y);
    if (!inner || inner == hit) break;
    hit = inner;
  }
  if (!hit || !(hit == el || el.contains(hit))) return { state: 'covered by ' + (hit ? hit.outerHTML.slice(0, 120) : 'nothing') };
  return { state: 'ok', x, y };
};
`

// MustEval evaluates expr (which may use the helpers of jsPrelude) in the page.
func MustEval[T any](tb testing.TB, p *Page, expr string) T {
	tb.Helper()
	v, err := eval[T](p, expr)
	if err != nil {
		tb.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func eval[T any](p *Page, expr string) (T, error) {
	return chromedp.Run(p.ctx, chromedp.Evaluate[T](`(() => {`+jsPrelude+`return (`+expr+`); })()`))
}

type probeResult struct {
	State string  `json:"state"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
}

// MustClick clicks the element that expr gives with real mouse input at its centre,
// once it is visible and nothing covers it.
func (p *Page) MustClick(what, expr string) {
	p.tb.Helper()
	p.mustClick(what, `probe(`+expr+`, true)`)
}

// MustClickScrolledTop clicks like MustClick, but first scrolls the element to the
// top of the viewport: for page content that the non-blocking first layer (fixed at
// the bottom) covers at the viewport's centre, as a visitor would scroll it into view.
func (p *Page) MustClickScrolledTop(what, expr string) {
	p.tb.Helper()
	p.mustClick(what, `((el) => { if (el) el.scrollIntoView({ block: 'start', inline: 'center' }); return probe(el, false); })(`+expr+`)`)
}

func (p *Page) mustClick(what, probeExpr string) {
	p.tb.Helper()
	var at probeResult
	wait.MustUntil(p.tb, what+" can be clicked", func() (bool, string) {
		var err error
		at, err = eval[probeResult](p, probeExpr)
		if err != nil {
			return false, err.Error()
		}
		return at.State == "ok", at.State
	})
	if err := chromedp.Do(p.ctx, chromedp.MouseClickXY(at.X, at.Y)); err != nil {
		p.tb.Fatalf("click %s: %v", what, err)
	}
}

// MustClearCache empties the browser's HTTP cache, as if the banner script's
// max-age had run out.
func (p *Page) MustClearCache() {
	p.tb.Helper()
	if _, err := chromedp.Call(p.ctx, network.ClearBrowserCache, cdp.Empty{}); err != nil {
		p.tb.Fatalf("clear the browser cache: %v", err)
	}
}

// MustWaitJS waits until the boolean expression expr holds in the page.
func (p *Page) MustWaitJS(what, expr string) {
	p.tb.Helper()
	wait.MustUntil(p.tb, what, func() (bool, string) {
		ok, err := eval[bool](p, expr)
		if err != nil {
			return false, err.Error()
		}
		return ok, expr + " is false"
	})
}

// firstLayer are the buttons the first layer of the banner must offer.
var firstLayer = []string{"accept-all", "reject-all", "customize"}

// MustBannerVisible waits until every first-layer button is visible and clickable.
func (p *Page) MustBannerVisible() {
	p.tb.Helper()
	for _, action := range firstLayer {
		wait.MustUntil(p.tb, "the banner's "+action+" button is visible", func() (bool, string) {
			r, err := eval[probeResult](p, `probe(layer1('`+action+`'), false)`)
			if err != nil {
				return false, err.Error()
			}
			return r.State == "ok", r.State
		})
	}
}

// MustBannerHidden waits until no first-layer button is shown.
func (p *Page) MustBannerHidden() {
	p.tb.Helper()
	for _, action := range firstLayer {
		wait.MustUntil(p.tb, "the banner's "+action+" button is gone", func() (bool, string) {
			r, err := eval[probeResult](p, `probe(layer1('`+action+`'), false)`)
			if err != nil {
				return false, err.Error()
			}
			return r.State == "missing" || r.State == "invisible", r.State
		})
	}
}

// MustDialogOpen waits until the second layer is open with its buttons clickable.
func (p *Page) MustDialogOpen() {
	p.tb.Helper()
	for _, action := range []string{"accept-all", "reject-all", "save"} {
		wait.MustUntil(p.tb, "the preferences dialog shows "+action, func() (bool, string) {
			r, err := eval[probeResult](p, `probe(inDialog('[data-action="`+action+`"]'), true)`)
			if err != nil {
				return false, err.Error()
			}
			return r.State == "ok", r.State
		})
	}
}

// openSettings opens the second layer with the footer's "Cookie settings" link.
func openSettings(p *Page) {
	p.tb.Helper()
	p.MustClick(`the footer's "Cookie settings" link`, `document.querySelector('a[data-consent-open]')`)
	p.MustDialogOpen()
}

// MustReady waits until the banner script has run and applied a stored decision.
func (p *Page) MustReady() {
	p.tb.Helper()
	p.MustWaitJS("the banner applied the stored decision", `!!window.consent && window.consent.get() !== null`)
}

// DOMState is what the page shows about what ran.
type DOMState struct {
	PartnerScripts  []string `json:"partnerScripts"`  // hosts of <script src> on *.partner.test
	AdSnippetRuns   int      `json:"adSnippetRuns"`   // times the advertising snippet ran
	DisabledInert   bool     `json:"disabledInert"`   // the disabled partner's snippet is still text/plain
	DisabledPresent bool     `json:"disabledPresent"` // ... and still in the page
}

// MustDOM reads the DOMState.
func (p *Page) MustDOM() DOMState {
	p.tb.Helper()
	return MustEval[DOMState](p.tb, p, `(() => {
  const d = document.getElementById('disabled-partner-snippet');
  return {
    partnerScripts: [...document.querySelectorAll('script[src]')].map((s) => new URL(s.src).hostname).filter((h) => h.endsWith('.partner.test')).sort(),
    adSnippetRuns: window.adSnippetRuns || 0,
    disabledInert: !!d && d.type == 'text/plain' && !d.src,
    disabledPresent: !!d,
  };
})()`)
}

// Stored is the consent cookie as banner/src/cookie.ts writes it.
type Stored struct {
	ID          string          `json:"i"`
	Fingerprint string          `json:"f"`
	Categories  map[string]bool `json:"c"`
	Partners    map[string]bool `json:"p"`
	Created     int64           `json:"t"`
	Updated     int64           `json:"u"`
	Pending     int             `json:"s"` // 1 until the backend has recorded it

	Cookie *network.Cookie `json:"-"`
}

// MustCookie waits for the site's consent cookie (read through CDP, as the browser
// stores it) once the backend has recorded its decision, and parses it; with check
// set, it waits until check holds too. Until the backend's answer clears the pending
// flag, a reload sends the decision again, by design: a test that reloads and counts
// records must wait for it, as a visitor's next page view almost always does.
func (p *Page) MustCookie(check func(Stored) bool) Stored {
	p.tb.Helper()
	return p.mustCookie(func(s Stored) bool { return s.Pending == 0 && (check == nil || check(s)) })
}

// MustCookieAsIs waits for the site's consent cookie, whether or not the backend has
// recorded its decision.
func (p *Page) MustCookieAsIs() Stored {
	p.tb.Helper()
	return p.mustCookie(nil)
}

func (p *Page) mustCookie(check func(Stored) bool) Stored {
	p.tb.Helper()
	var s Stored
	wait.MustUntil(p.tb, "the "+p.Site.Cookie.Name+" cookie is set", func() (bool, string) {
		res, err := chromedp.Call(p.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{p.Env.PageURL(p.Site.Key)}})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range res.Cookies {
			if c.Name != p.Site.Cookie.Name {
				continue
			}
			raw, err := url.PathUnescape(c.Value)
			if err != nil {
				return false, fmt.Sprintf("cookie value %q: %v", c.Value, err)
			}
			s = Stored{}
			if err := json.Unmarshal([]byte(raw), &s); err != nil {
				return false, fmt.Sprintf("cookie value %q: %v", raw, err)
			}
			s.Cookie = c
			if check != nil && !check(s) {
				return false, "cookie " + raw
			}
			return true, ""
		}
		return false, fmt.Sprintf("no such cookie among %d", len(res.Cookies))
	})
	return s
}

// MustNoBackendPost fails tb unless every request to consent.test after mark is a GET
// of the site's banner scripts: the first layer's or a second layer's.
func (p *Page) MustNoBackendPost(mark int) {
	p.tb.Helper()
	files := map[string]bool{"GET /v1/banner/" + p.Site.Key + ".js": true}
	for _, l := range p.Site.Languages {
		files["GET /v1/banner/"+p.Site.Key+"/"+l+".js"] = true
	}
	for _, r := range p.Env.Requests.Backend(mark) {
		if !files[r] {
			p.tb.Errorf("unexpected request to %s: %s (want at most the banner's scripts)", backendHost, r)
		}
	}
}

// MustPendingDue makes the decision the cookie holds as not sent yet due now, as if
// the time its backoff asks for had passed.
func (p *Page) MustPendingDue() {
	p.tb.Helper()
	MustEval[bool](p.tb, p, `(() => {
  const name = `+jsString(p.Site.Cookie.Name)+`;
  const pair = document.cookie.split('; ').find((c) => c.indexOf(name + '=') == 0);
  const s = JSON.parse(decodeURIComponent(pair.slice(name.length + 1)));
  s.b = 0;
  document.cookie = name + '=' + encodeURIComponent(JSON.stringify(s)) + ';Max-Age=86400;Path=/;SameSite=Lax;Domain=' + `+jsString(p.Site.Cookie.Domain)+`;
  return true;
})()`)
}

// MustNoPartnerRequest fails tb if any partner host was requested after mark.
func (p *Page) MustNoPartnerRequest(mark int, when string) {
	p.tb.Helper()
	if hosts := p.Env.Requests.PartnerHosts(mark); len(hosts) > 0 {
		p.tb.Errorf("%s: partner hosts were requested: %v", when, keys(hosts))
	}
}

// MustPartnerHosts waits until every host of want was requested after mark, then
// fails tb unless exactly those were (and the disabled snippet's host never was).
func (p *Page) MustPartnerHosts(mark int, want map[string]bool) {
	p.tb.Helper()
	p.MustRequestedHosts(mark, want)
	if dom := p.MustDOM(); !equalSets(setOf(dom.PartnerScripts), want) {
		p.tb.Errorf("partner <script> elements in the page load %v, want exactly %v", dom.PartnerScripts, keys(want))
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func setOf(list []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range list {
		m[s] = true
	}
	return m
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return strings.ReplaceAll(string(b), "'", `\u0027`)
}

// MustNavigatePath opens path (such as DeepPath or EmbedsPath) on the site's www host
// and waits for its load event.
func (p *Page) MustNavigatePath(path string) {
	p.tb.Helper()
	u := p.Env.Origin(p.Site.Key) + path
	if err := chromedp.Do(p.ctx, chromedp.Navigate(u)); err != nil {
		p.tb.Fatalf("navigate to %s: %v", u, err)
	}
}

// MustInitScript makes src run in every document the tab opens from now on, before
// the page's own scripts: the way to emulate a browser feature (GPC, blocked cookies)
// or to listen for events the banner fires while the page loads.
func (p *Page) MustInitScript(src string) {
	p.tb.Helper()
	if _, err := chromedp.Call(p.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src}); err != nil {
		p.tb.Fatalf("add a script to every new document: %v", err)
	}
}

// MustBrowserCookies returns every cookie the browser would send to any of urls,
// each (name, domain, path) once.
func (p *Page) MustBrowserCookies(urls ...string) []*network.Cookie {
	p.tb.Helper()
	res, err := chromedp.Call(p.ctx, network.GetCookies, network.GetCookiesParams{URLs: urls})
	if err != nil {
		p.tb.Fatalf("read the cookies of %v: %v", urls, err)
	}
	return res.Cookies
}

// MustSetCookie stores a cookie in the browser as if a response had set it.
func (p *Page) MustSetCookie(c network.SetCookieParams) {
	p.tb.Helper()
	if _, err := chromedp.Call(p.ctx, network.SetCookie, c); err != nil {
		p.tb.Fatalf("set cookie %s: %v", c.Name, err)
	}
}

// MustDeleteCookie deletes the cookie named name with exactly domain and path.
func (p *Page) MustDeleteCookie(name, domain, path string) {
	p.tb.Helper()
	if _, err := chromedp.Call(p.ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: name, Domain: domain, Path: path}); err != nil {
		p.tb.Fatalf("delete cookie %s: %v", name, err)
	}
}

// MustRawCookie returns the consent cookie's JSON as a map of its fields, or nil
// when the browser holds no such cookie; for fields Stored does not name.
func (p *Page) MustRawCookie() map[string]json.RawMessage {
	p.tb.Helper()
	for _, c := range p.MustBrowserCookies(p.Env.PageURL(p.Site.Key)) {
		if c.Name != p.Site.Cookie.Name {
			continue
		}
		raw, err := url.PathUnescape(c.Value)
		if err != nil {
			p.tb.Fatalf("cookie value %q: %v", c.Value, err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			p.tb.Fatalf("cookie value %q: %v", raw, err)
		}
		return m
	}
	return nil
}

// MustMarkDocument tags the current document, so that MustWaitNewDocument can tell
// when the banner (or anything else) has reloaded the page.
func (p *Page) MustMarkDocument() {
	p.tb.Helper()
	MustEval[bool](p.tb, p, `(window.__e2eOldDocument = true)`)
}

// MustWaitNewDocument waits until the document marked by MustMarkDocument is gone
// and its successor has finished loading.
func (p *Page) MustWaitNewDocument(what string) {
	p.tb.Helper()
	p.MustWaitJS(what, `!window.__e2eOldDocument && document.readyState === 'complete'`)
}

// MustRecordAt checks one stored record as MustRecord does, for a decision taken on
// the page at url instead of the home page.
func MustRecordAt(tb testing.TB, p *Page, r *consent.Record, url string, action consent.Action, surface consent.Surface, fingerprint string, categories, partners map[string]bool) {
	tb.Helper()
	if r.URL != url {
		tb.Errorf("record url = %q, want %q", r.URL, url)
	}
	c := *r
	c.URL = p.Env.PageURL(p.Site.Key)
	MustRecord(tb, p, &c, action, surface, fingerprint, categories, partners)
}

// MustRequestedHosts waits until every host of want was requested after mark, then
// fails tb unless exactly those were. Unlike MustPartnerHosts it does not compare the
// page's <script> elements, so want may hold embed hosts.
func (p *Page) MustRequestedHosts(mark int, want map[string]bool) {
	p.tb.Helper()
	wait.MustUntil(p.tb, fmt.Sprintf("hosts %v are requested", keys(want)), func() (bool, string) {
		got := p.Env.Requests.PartnerHosts(mark)
		for h := range want {
			if !got[h] {
				return false, fmt.Sprintf("requested so far: %v", keys(got))
			}
		}
		return true, ""
	})
	if got := p.Env.Requests.PartnerHosts(mark); !equalSets(got, want) {
		p.tb.Errorf("partner hosts requested = %v, want exactly %v", keys(got), keys(want))
	}
}

// embedPrelude reads the gated embeds of a page (the /embeds page, or any the page
// adds later) and their placeholders.
const embedPrelude = `
const embedEl = (id) => document.getElementById(id);
const placeholder = (id) => { const e = embedEl(id); const s = e && e.previousElementSibling; return s && s.localName === 'consent-placeholder' ? s : null; };
const phButton = (id, action) => { const p = placeholder(id); return p && p.shadowRoot ? p.shadowRoot.querySelector('[data-action="' + action + '"]') : null; };
const embedState = (id) => {
  const e = embedEl(id), p = placeholder(id), r = p && p.shadowRoot;
  return {
    present: !!e, src: e ? e.getAttribute('src') || '' : '',
    placeholder: !!p, partner: p ? p.getAttribute('data-partner') || '' : '', open: !!r,
    text: r ? r.textContent : '',
    buttons: r ? [...r.querySelectorAll('[data-action]')].map((b) => b.localName + ':' + b.getAttribute('data-action')) : [],
  };
};
`

func embedJS(expr string) string { return `(() => {` + embedPrelude + `return (` + expr + `); })()` }

// EmbedState is what the page shows of one gated embed.
type EmbedState struct {
	Present     bool     `json:"present"`
	Src         string   `json:"src"`
	Placeholder bool     `json:"placeholder"` // a <consent-placeholder> right before it
	Partner     string   `json:"partner"`     // the placeholder's data-partner
	Open        bool     `json:"open"`        // ... with an open shadow root
	Text        string   `json:"text"`
	Buttons     []string `json:"buttons"` // "tag:data-action" of its buttons
}

// mustEmbed reads what the page shows of the gated embed with the element id.
func mustEmbed(tb testing.TB, p *Page, id string) EmbedState {
	tb.Helper()
	return MustEval[EmbedState](tb, p, embedJS(`embedState(`+jsString(id)+`)`))
}
