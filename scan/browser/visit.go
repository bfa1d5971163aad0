package browser

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/scan"
)

const (
	// stepTimeout bounds a command that reads the page, such as its cookies.
	stepTimeout = 10 * time.Second
	// maxRequests bounds the requests a visit keeps: a page may make any number.
	maxRequests = 1000
	// maxURL is how much of a request's URL, or its initiator's, a visit keeps.
	maxURL = 1000
	// longRequest is how long a request may stay open before quiet stops waiting
	// for it.
	longRequest = 5 * time.Second
)

// visit opens page in a fresh browser profile, chooses as state says, and records
// what the page left in the browser and which hosts it contacted. It returns the
// page's links too, and with sitemap the pages of the site's sitemap after them.
func (s *scanner) visit(ctx context.Context, site *consent.Site, page string, state scan.State, sitemap bool) (scan.Visit, []string) {
	v := scan.Visit{Page: page, State: state}
	net := newTraffic(site)
	tab, cancel := chromedp.NewContext(s.browser, chromedp.WithNewBrowserContext(), chromedp.WithListener(net.listen))
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	net.tab = tab
	err := chromedp.Do(tab, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		net.mainFrame = cdp.FrameID(t.TargetID)
		return nil
	}))
	if err == nil {
		_, err = chromedp.Call(tab, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: s.userAgent, AcceptLanguage: site.Languages[0]})
	}
	if err == nil {
		_, err = chromedp.Call(tab, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: noPopupsJS})
	}
	if err == nil {
		// Every document the page would load stops first at traffic.paused.
		_, err = chromedp.Call(tab, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{ResourceType: network.ResourceTypeDocument}}})
	}
	if err != nil {
		v.Error = "the browser could not open a tab: " + err.Error()
		return v, nil
	}
	s.opts.Progress("%s %s", state, page)

	var links []string
	v.Error = s.steps(tab, net, page, state, &v, &links, sitemap)
	read, cancelRead := context.WithTimeout(tab, stepTimeout)
	defer cancelRead()
	v.At = time.Now().UTC()
	if err := s.record(read, &v); err != nil && v.Error == "" {
		v.Error = "the browser's cookies and storage could not be read: " + err.Error()
	}
	v.Requests, v.BannerScript = net.result()
	if b := net.notes(); b != "" {
		v.Error = strings.TrimPrefix(v.Error+"; "+b, "; ")
	}
	return v, links
}

// steps loads the page, and chooses in the banner unless state is NoChoice; it
// returns what went wrong, or "".
func (s *scanner) steps(tab context.Context, net *traffic, page string, state scan.State, v *scan.Visit, links *[]string, sitemap bool) string {
	if msg := s.load(tab, net, func(ctx context.Context) (*network.Response, error) {
		return chromedp.Run(ctx, chromedp.NavigateResponse(page))
	}); msg != "" {
		return msg
	}
	v.Loaded = true
	v.Banner = s.bannerShown(tab)
	if state == scan.NoChoice {
		*links = s.links(tab, sitemap)
		return ""
	}
	if !v.Banner {
		return "no banner to choose in"
	}
	action := "reject-all"
	if state == scan.Accepted {
		action = "accept-all"
	}
	net.touch() // what the click starts may reach the tab's events after the click returns
	if err := s.click(tab, action); err != nil {
		return "the banner's " + action + " button could not be clicked: " + err.Error()
	}
	net.quiet(tab, s.opts.Quiet, s.opts.PageTimeout)
	if s.bannerShown(tab) {
		return "the banner stayed open after " + action
	}
	// The next view, with the choice stored: what the site's own scripts do with it.
	return s.load(tab, net, func(ctx context.Context) (*network.Response, error) {
		return nil, chromedp.Do(ctx, chromedp.Reload())
	})
}

// load runs a navigation and waits until the page has gone quiet; it returns what
// went wrong, or "".
func (s *scanner) load(tab context.Context, net *traffic, navigate func(context.Context) (*network.Response, error)) string {
	ctx, cancel := context.WithDeadline(tab, earliest(time.Now().Add(s.opts.PageTimeout), s.deadline))
	defer cancel()
	resp, err := navigate(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Sprintf("the page did not finish loading within %s", s.opts.PageTimeout)
		}
		return "the page did not load: " + err.Error()
	}
	net.quiet(tab, s.opts.Quiet, s.opts.PageTimeout)
	if resp != nil && resp.Status >= 400 {
		return fmt.Sprintf("the page answered HTTP %d", resp.Status)
	}
	return ""
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// noPopupsJS keeps what a page opens in its own tab, where traffic.paused holds it
// to the site's origins and stops forms: a page may open a window on the click in
// the banner, in a tab the scan would not follow.
const noPopupsJS = `(() => {
  window.open = () => null;
  const own = (el) => { if (el && el.target && el.target != '_self') el.target = '_self'; };
  for (const name of ['submit', 'requestSubmit']) {
    const f = HTMLFormElement.prototype[name];
    HTMLFormElement.prototype[name] = function (...args) { own(this); return f.apply(this, args); };
  }
  const click = HTMLElement.prototype.click;
  HTMLElement.prototype.click = function () { own(this.closest && this.closest('a[target],area[target]')); return click.call(this); };
  addEventListener('submit', (e) => own(e.target), true);
  addEventListener('click', (e) => { for (const el of e.composedPath()) if (el.target !== undefined && el.closest) own(el.closest('a[target],area[target]')); }, true);
})()`

// buttonJS returns the centre of the banner's first-layer button for an action,
// scrolled into view, or null: the buttons carry data-action in the banner's open
// shadow root.
const buttonJS = `((action) => {
  const host = document.querySelector('consent-banner'), root = host && host.shadowRoot;
  const b = root && [...root.querySelectorAll('[data-action="' + action + '"]')].find((b) => !b.closest('dialog'));
  if (!b) return null;
  b.scrollIntoView({ block: 'center', inline: 'center' });
  const r = b.getBoundingClientRect(), cs = getComputedStyle(b);
  if (!r.width || !r.height || cs.visibility == 'hidden') return null;
  return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
})`

type point struct{ X, Y float64 }

func (s *scanner) button(tab context.Context, action string) (*point, error) {
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[*point](buttonJS+"('"+action+"')"))
}

// bannerShown reports whether the banner's "Accept all" button is on the page.
func (s *scanner) bannerShown(tab context.Context) bool {
	p, err := s.button(tab, "accept-all")
	return err == nil && p != nil
}

// click clicks the banner's button for action with the mouse, as a visitor does.
func (s *scanner) click(tab context.Context, action string) error {
	p, err := s.button(tab, action)
	if err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("not on the page")
	}
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	return chromedp.Do(ctx, chromedp.MouseClickXY(p.X, p.Y))
}

// links returns the page's links, and with sitemap the pages of /sitemap.xml.
func (s *scanner) links(tab context.Context, sitemap bool) []string {
	ctx, cancel := context.WithTimeout(tab, stepTimeout)
	defer cancel()
	links, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(
		`[...document.querySelectorAll('a[href]')].slice(0, %d).map((a) => a.href)`, maxLinksPerPage)))
	if !sitemap {
		return links
	}
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`fetch('/sitemap.xml', { credentials: 'omit' }).then((r) => r.ok ? r.text() : '').then((t) => t.slice(0, %d)).catch(() => '')`,
		maxSitemapBytes), chromedp.EvalAwaitPromise))
	return append(links, sitemapPages(text)...)
}

// storageJS lists the keys of the page's localStorage and sessionStorage.
const storageJS = `(() => {
  const out = [];
  for (const [area, get] of [['local', () => localStorage], ['session', () => sessionStorage]]) {
    try { const st = get(); for (let i = 0; i < st.length && i < 1000; i++) out.push({ area, key: st.key(i).slice(0, 200) }); } catch (e) {}
  }
  return out;
})()`

// record reads the cookies of the tab's browser profile, every site's, and the
// page's storage keys.
func (s *scanner) record(ctx context.Context, v *scan.Visit) error {
	id := chromedp.FromContext(ctx).BrowserContextID
	res, err := chromedp.CallBrowser(ctx, storage.GetCookies, storage.GetCookiesParams{BrowserContextID: id})
	if err != nil {
		return err
	}
	for _, c := range res.Cookies {
		sc := scan.Cookie{Name: c.Name, Domain: c.Domain, Path: c.Path, Session: c.Session, Secure: c.Secure, HTTPOnly: c.HTTPOnly, SameSite: string(c.SameSite)}
		if !c.Session {
			sc.Expires = time.Unix(int64(c.Expires), 0).UTC()
		}
		v.Cookies = append(v.Cookies, sc)
	}
	keys, err := chromedp.Run(ctx, chromedp.Evaluate[[]scan.StorageKey](storageJS))
	v.Storage = keys
	return err
}

// traffic follows a tab's requests: what is in flight, to tell when the page has
// gone quiet, and what went to other hosts.
type traffic struct {
	site      *consent.Site
	tab       context.Context
	mainFrame cdp.FrameID
	banner    string // the path of the site's banner script

	mu       sync.Mutex
	inflight map[network.RequestID]time.Time // when each started
	last     time.Time                       // of the last request started or ended
	requests []scan.Request
	index    map[network.RequestID]int // the request's latest entry in requests
	script   string                    // the banner script's URL, once requested
	dropped  int                       // requests not kept beyond maxRequests
	blocked  []string
}

func newTraffic(site *consent.Site) *traffic {
	return &traffic{
		site: site, banner: "/v1/banner/" + site.Key + ".js",
		inflight: map[network.RequestID]time.Time{}, index: map[network.RequestID]int{}, last: time.Now(),
	}
}

// keep reports whether a request to u goes into the visit: a request to another
// site, the banner's script, or a partner's tag wherever it is.
func (t *traffic) keep(u *url.URL) bool {
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	if u.Path == t.banner || !scan.FirstParty(t.site, u.Hostname()) {
		return true
	}
	for _, p := range t.site.Partners {
		for _, tag := range p.Tags {
			if tag.Src != "" && tag.Src == u.String() {
				return true
			}
		}
	}
	return false
}

// listen runs on the tab's event loop: it must not block or send commands.
func (t *traffic) listen(ev any) {
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		t.mu.Lock()
		defer t.mu.Unlock()
		t.last = time.Now()
		if ev.Type == network.ResourceTypeDocument && ev.FrameID == t.mainFrame && ev.RedirectResponse == nil {
			clear(t.inflight) // the previous document's requests end with it
		}
		if i, ok := t.index[ev.RequestID]; ok && ev.RedirectResponse != nil {
			t.requests[i].Status = int(ev.RedirectResponse.Status)
			delete(t.index, ev.RequestID)
		}
		t.inflight[ev.RequestID] = time.Now()
		u, err := url.Parse(ev.Request.URL)
		// The tab's own navigations are pages, not hosts the page contacts.
		if err != nil || !t.keep(u) || ev.Type == network.ResourceTypeDocument && ev.FrameID == t.mainFrame {
			return
		}
		if u.Path == t.banner && t.script == "" {
			t.script = ev.Request.URL
		}
		if len(t.requests) == maxRequests {
			t.dropped++
			return
		}
		t.index[ev.RequestID] = len(t.requests)
		t.requests = append(t.requests, scan.Request{
			URL: truncate(ev.Request.URL), Host: u.Hostname(), Type: string(ev.Type), Initiator: truncate(initiator(ev.Initiator)),
		})
	case *network.EventResponseReceived:
		t.status(ev.RequestID, int(ev.Response.Status))
	case *network.EventResponseReceivedExtraInfo:
		// also for a response that the browser then blocks (ORB), which gets no
		// EventResponseReceived
		t.status(ev.RequestID, int(ev.StatusCode))
	case *network.EventLoadingFinished:
		t.done(ev.RequestID, "")
	case *network.EventLoadingFailed:
		reason := ev.ErrorText
		if ev.BlockedReason != "" {
			reason += " (" + string(ev.BlockedReason) + ")"
		}
		t.done(ev.RequestID, reason)
	case *fetch.EventRequestPaused:
		go t.paused(ev)
	}
}

func (t *traffic) status(id network.RequestID, status int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.index[id]; ok && status != 0 {
		t.requests[i].Status = status
	}
}

// touch counts now as the last activity: quiet waits at least its time from here.
func (t *traffic) touch() {
	t.mu.Lock()
	t.last = time.Now()
	t.mu.Unlock()
}

func (t *traffic) done(id network.RequestID, failed string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = time.Now()
	delete(t.inflight, id)
	if i, ok := t.index[id]; ok && failed != "" {
		t.requests[i].Failed = failed
	}
}

// paused lets a document load, unless it is a form being sent or the tab leaving
// the site's origins: the scan reads, it never posts or wanders off.
func (t *traffic) paused(ev *fetch.EventRequestPaused) {
	u, err := url.Parse(ev.Request.URL)
	why := ""
	switch {
	case ev.Request.Method != "GET":
		why = "a form sent with " + ev.Request.Method + " to " + ev.Request.URL
	case ev.FrameID == t.mainFrame && (err != nil || !t.site.HasOrigin(u.Scheme+"://"+u.Host)):
		why = "a navigation away from the site, to " + ev.Request.URL
	}
	if why == "" {
		_, _ = chromedp.Call(t.tab, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		return
	}
	t.mu.Lock()
	t.blocked = append(t.blocked, why)
	t.mu.Unlock()
	// 204 No Content: the browser stays on the page it is on, as it would not after
	// an error.
	_, _ = chromedp.Call(t.tab, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: http.StatusNoContent})
}

// quiet waits until no request has been in flight for d, or for at most limit.
func (t *traffic) quiet(ctx context.Context, d, limit time.Duration) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		t.mu.Lock()
		idle := true
		for _, started := range t.inflight {
			// A request open this long is a stream (EventSource, a long poll), not
			// loading: it would keep the page from ever being quiet.
			idle = idle && time.Since(started) > longRequest
		}
		wait := d - time.Since(t.last)
		t.mu.Unlock()
		if idle && wait <= 0 {
			return
		}
		if !idle || wait > 100*time.Millisecond {
			wait = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (t *traffic) result() ([]scan.Request, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]scan.Request(nil), t.requests...), t.script
}

// notes says what the visit did not load or did not keep.
func (t *traffic) notes() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var notes []string
	if len(t.blocked) > 0 {
		notes = append(notes, "not loaded: "+strings.Join(t.blocked, "; "))
	}
	if t.dropped > 0 {
		notes = append(notes, fmt.Sprintf("only the first %d requests were kept, %d more were not", maxRequests, t.dropped))
	}
	return strings.Join(notes, "; ")
}

// initiator names what made a request: the document whose HTML asked for it, or
// the script that did.
func initiator(in *network.Initiator) string {
	if in == nil {
		return ""
	}
	if in.URL != "" {
		return in.URL
	}
	for st := in.Stack; st != nil; st = st.Parent {
		for _, f := range st.CallFrames {
			if f.URL != "" {
				return f.URL
			}
		}
	}
	return ""
}

// truncate keeps the start of a URL that a page may have made any length.
func truncate(u string) string {
	if len(u) <= maxURL {
		return u
	}
	return strings.ToValidUTF8(u[:maxURL], "") + "…"
}
