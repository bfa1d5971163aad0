package e2e

import (
	"context"
	"encoding/json"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
)

// backendHost is where the banner script and the consent API live.
const backendHost = "consent.test"

// partnerDomain is the parent of every fake partner host: a partner's tags load from
// <partner-id>.partner.test.
const partnerDomain = ".partner.test"

// disabledSnippetHost serves the page's own snippet for a partner that is not enabled.
const disabledSnippetHost = "disabled" + partnerDomain

// EmbedHost serves the embeds (video iframes, images) that the /embeds page gates.
const EmbedHost = "embed" + partnerDomain

// EmbedProvider is whom the /embeds page's video names as its provider
// (data-provider), apart from the partner it is gated on.
const EmbedProvider = "VideoTube"

// Paths of the host pages besides the home page "/": the same page deeper in the site
// (partners' cookies get that path by default), one with gated embeds, and a long
// one with a contact form.
const (
	DeepPath   = "/shop/item/"
	EmbedsPath = "/embeds"
	FormPath   = "/contact"
)

// ConsentsMode is how the backend answers POST /v1/consents.
type ConsentsMode int32

// The ways POST /v1/consents can answer; the rest of the backend stays up.
const (
	ConsentsUp          ConsentsMode = iota // the real handler
	ConsentsUnavailable                     // 503 with the error body (CORS allowed), nothing stored
	ConsentsRateLimited                     // 429 with the error body (CORS allowed), nothing stored
	ConsentsHangUp                          // the connection is closed without an answer
)

// Request is one HTTP request that reached the local server.
type Request struct {
	Host   string // without the port
	Method string
	Path   string
	At     time.Time
}

// Requests records every request that reaches the local server, in arrival order.
type Requests struct {
	mu   sync.Mutex
	list []Request
}

func (rs *Requests) add(r Request) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.list = append(rs.list, r)
}

// Mark returns a position; Since(mark) returns what arrived after it.
func (rs *Requests) Mark() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.list)
}

// Since returns the requests that arrived after mark.
func (rs *Requests) Since(mark int) []Request {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Clone(rs.list[mark:])
}

// PartnerHosts returns the set of partner hosts requested after mark.
func (rs *Requests) PartnerHosts(mark int) map[string]bool {
	hosts := map[string]bool{}
	for _, r := range rs.Since(mark) {
		if strings.HasSuffix(r.Host, partnerDomain) {
			hosts[r.Host] = true
		}
	}
	return hosts
}

// Backend returns the requests to consent.test after mark, as "METHOD /path".
func (rs *Requests) Backend(mark int) []string {
	var out []string
	for _, r := range rs.Since(mark) {
		if r.Host == backendHost {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// postsSince counts the POST /v1/consents that reached the backend after mark.
func postsSince(env *Env, mark int) int {
	n := 0
	for _, r := range env.Requests.Backend(mark) {
		if r == "POST /v1/consents" {
			n++
		}
	}
	return n
}

// embedRequested reports whether path was requested from EmbedHost after mark.
func embedRequested(env *Env, mark int, path string) bool {
	for _, r := range env.Requests.Since(mark) {
		if r.Host == EmbedHost && r.Path == path {
			return true
		}
	}
	return false
}

// Env is one isolated world for a test case: a local server on its own port that
// plays the four sites, the consentd backend (with its own bbolt file) and the
// partners' tag hosts.
type Env struct {
	Port     string
	Config   *config.Config // as first loaded; never modified, copy it to change it
	Server   *server.Server
	Store    *bolt.Store
	Requests *Requests

	pages       map[string]pageData // per site key, fixed at start
	consents    atomic.Int32        // a ConsentsMode
	historyDown atomic.Bool         // GET /v1/consents/{consent_id} answers 503
}

type pageData struct {
	Site     string
	Name     string
	Lang     string
	Port     string
	Backend  string // where the banner script comes from: scheme, host and port
	Disabled string // a partner id that is not enabled for the site
	Embed    string // the enabled partner whose embeds the /embeds page shows
	Provider string // the video's provider: EmbedProvider
	Embeds   bool   // the page is /embeds
	Form     bool   // the page is /contact
}

// MustEnv starts an Env for tb that serves site, and stops it when tb ends. Only
// that site's banner is built: each build (esbuild, brotli at best quality) costs
// about 0.3 s under -race, and a case visits one site.
func MustEnv(tb testing.TB, site string) *Env {
	tb.Helper()
	return mustEnv(tb, site, "", server.Options{})
}

// MustEnvBehindProxy is MustEnv for consentd behind a reverse proxy at backend (such
// as https://consent.test:8443), from which the pages load the banner. consentd
// believes X-Forwarded-For from 127.0.0.1 alone, where the proxy connects from, and
// serves the demo pages, which the proxy must not.
func MustEnvBehindProxy(tb testing.TB, site, backend string) *Env {
	tb.Helper()
	return mustEnv(tb, site, backend, server.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Demo: true})
}

// mustEnv starts an Env whose pages load the banner from backend (the local
// server's consent.test if empty), its consentd with opts, its keys and logger set.
func mustEnv(tb testing.TB, site, backend string, opts server.Options) *Env {
	tb.Helper()
	e := &Env{Requests: &Requests{}, pages: map[string]pageData{}}
	ts := httptest.NewUnstartedServer(e)
	_, port, err := net.SplitHostPort(ts.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	e.Port = port
	if backend == "" {
		backend = "http://" + backendHost + ":" + port
	}

	cfg, err := config.Load(sitesFile)
	if err != nil {
		tb.Fatalf("load %s: %v", sitesFile, err)
	}
	if cfg.Sites[site] == nil {
		tb.Fatalf("%s has no site %s", sitesFile, site)
	}
	cfg.Sites = map[string]*consent.Site{site: cfg.Sites[site]}
	for key, site := range cfg.Sites {
		// The banner runs on http://www.<site>:<port> here; the cookie domain stays
		// the registrable domain, so the www/apex sharing is exercised as in production.
		site.Origins = []string{e.Origin(key)}
		for i := range site.Partners {
			p := &site.Partners[i]
			var tags []consent.Tag
			for _, tag := range p.Tags {
				if tag.Src == "" {
					tags = append(tags, tag)
					continue
				}
				tag.Src = "http://" + p.ID + partnerDomain + ":" + port + "/tag.js"
				// After each script, a snippet that needs what the script defines, as
				// partners' snippets do: it notes whether the script had run.
				tags = append(tags, tag, consent.Tag{Inline: "(window.tagOrder=window.tagOrder||[]).push(" +
					strconv.Quote(p.ID) + "+':'+((window.partnerTags||[]).indexOf(" + strconv.Quote(p.ID+partnerDomain) + ")>=0))"})
			}
			p.Tags = tags
		}
		disabled := "not-in-sites-yaml"
		for _, p := range site.Partners {
			if !p.Enabled {
				disabled = p.ID
				break
			}
		}
		e.pages[key] = pageData{Site: key, Name: strings.ToUpper(key[:1]) + key[1:], Lang: site.Languages[0], Port: port, Backend: backend, Disabled: disabled, Embed: embedPartner(site), Provider: EmbedProvider}
	}
	e.Config = cfg

	keys, err := proof.NewEphemeralKeyring()
	if err != nil {
		tb.Fatal(err)
	}
	const origin = "consent.test/log"
	e.Store, err = bolt.Open(filepath.Join(tb.TempDir(), "consents.db"), bolt.Log(origin, keys))
	if err != nil {
		tb.Fatal(err)
	}
	opts.Keys, opts.Origin = keys, origin
	opts.Logger = slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.Server = server.New(e.Store, opts)
	if err := e.Server.Load(cfg); err != nil {
		tb.Fatal(err)
	}
	ts.Start()
	tb.Cleanup(func() {
		ts.Close()
		if err := e.Store.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return e
}

// Origin returns the origin of site's www host on the local server.
func (e *Env) Origin(site string) string { return "http://www." + site + ":" + e.Port }

// PageURL returns the address of site's home page on the local server.
func (e *Env) PageURL(site string) string { return e.Origin(site) + "/" }

// DisabledPartner returns the partner id the site's page names in an element that
// must never run.
func (e *Env) DisabledPartner(site string) string { return e.pages[site].Disabled }

// EmbedPartner returns the enabled partner whose embeds the site's /embeds page gates
// (the last enabled one in catalog order).
func (e *Env) EmbedPartner(site string) string { return e.pages[site].Embed }

// EmbedURL returns the address of an embed on EmbedHost.
func (e *Env) EmbedURL(path string) string { return "http://" + EmbedHost + ":" + e.Port + path }

// SetConsents switches how POST /v1/consents answers from now on: ConsentsUp for the
// real handler, or a failure. Every request is still recorded in e.Requests.
func (e *Env) SetConsents(m ConsentsMode) { e.consents.Store(int32(m)) }

// SetHistoryDown makes GET /v1/consents/{consent_id} answer 503, as consentd does
// while its store cannot be read, or (down false) the real handler answer again.
func (e *Env) SetHistoryDown(down bool) { e.historyDown.Store(down) }

func embedPartner(site *consent.Site) string {
	id := ""
	for _, p := range site.Partners {
		if p.Enabled {
			id = p.ID
		}
	}
	return id
}

// ServeHTTP dispatches by host name, recording every request first.
func (e *Env) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	e.Requests.add(Request{Host: host, Method: r.Method, Path: r.URL.Path, At: time.Now()})
	switch {
	case host == backendHost:
		if r.Method == http.MethodPost && r.URL.Path == "/v1/consents" && e.failConsents(w, r) {
			return
		}
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/consents/") && e.historyDown.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"code":"unavailable","message":"e2e: the store cannot be read"}}`)
			return
		}
		e.Server.ServeHTTP(w, r)
	case host == EmbedHost:
		// A third-party embed: a tiny document for iframes, a pixel for images.
		w.Header().Set("Cache-Control", "no-store")
		if strings.HasSuffix(r.URL.Path, ".gif") {
			w.Header().Set("Content-Type", "image/gif")
			_, _ = w.Write(pixelGIF)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><title>embed</title><p>"+template.HTMLEscapeString(r.URL.Path)+"</p>")
	case strings.HasSuffix(host, partnerDomain):
		// A partner's tag: it says that it ran, and sets the cookies sites.yaml declares
		// for the partner the way tags do. no-store: a reload must ask again.
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		var cookies, storage []string
		if p := e.partner(strings.TrimSuffix(host, partnerDomain)); p != nil {
			cookies, storage = DeclaredCookies(p), DeclaredStorage(p)
		}
		_, _ = io.WriteString(w, partnerTagJS(host, cookies, storage))
	default:
		pd, ok := e.pages[strings.TrimPrefix(host, "www.")]
		switch {
		case !ok:
			http.NotFound(w, r)
			return
		case r.URL.Path == "/" || r.URL.Path == DeepPath:
		case r.URL.Path == EmbedsPath:
			pd.Embeds = true
		case r.URL.Path == FormPath:
			pd.Form = true
		default:
			http.NotFound(w, r)
			return
		}
		// ?lang=xx sets <html lang>, from which the banner picks its language.
		if lang := r.URL.Query().Get("lang"); lang != "" {
			pd.Lang = lang
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := hostPage.Execute(w, pd); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
}

// failConsents answers a POST /v1/consents as the current ConsentsMode says, and
// reports whether it did (false: the real handler answers).
func (e *Env) failConsents(w http.ResponseWriter, r *http.Request) bool {
	switch mode := ConsentsMode(e.consents.Load()); mode {
	case ConsentsUnavailable, ConsentsRateLimited:
		// As consentd answers with a full queue or to a client over its limit: CORS
		// allowed, so the page sees the status.
		status, body := http.StatusServiceUnavailable, `{"error":{"code":"unavailable","message":"e2e: the backend is down"}}`
		if mode == ConsentsRateLimited {
			status, body = http.StatusTooManyRequests, `{"error":{"code":"rate_limited","message":"e2e: too many requests"}}`
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			w.Header().Set("Access-Control-Allow-Origin", origin)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return true
	case ConsentsHangUp:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler) // closes the connection too
	}
	return false
}

// DeclaredCookies returns the cookie names a partner's tag sets in the page: those
// sites.yaml declares for it, a prefix pattern ("_gcl_*") as one name with that prefix.
func DeclaredCookies(p *consent.Partner) []string {
	var names []string
	for _, c := range p.Cookies {
		names = append(names, c.Name)
	}
	return declared(names)
}

// DeclaredStorage returns the localStorage and sessionStorage keys a partner's tag
// sets in the page, as DeclaredCookies does the cookie names.
func DeclaredStorage(p *consent.Partner) []string { return declared(p.Storage) }

// declared returns names with a prefix pattern ("_gcl_*") as one name with that
// prefix.
func declared(names []string) []string {
	out := []string{} // a JSON list, never null, for the tag's script
	for _, n := range names {
		if prefix, ok := strings.CutSuffix(n, "*"); ok {
			n = prefix + "e2e"
		}
		out = append(out, n)
	}
	return out
}

// partner returns the partner with the id in e's configuration, nil if none.
func (e *Env) partner(id string) *consent.Partner {
	for _, s := range e.Config.Sites {
		if p := s.Partner(id); p != nil {
			return p
		}
	}
	return nil
}

// partnerTagJS is what a fake partner host serves as its tag: it records that it ran
// (window.partnerTags, and a {event: "tag-loaded:<host>"} marker in window.dataLayer,
// so that a test sees where in the Consent Mode sequence the tag ran), then sets each
// cookie name host-only and on the registrable domain, with path / and with the
// page's own directory (a cookie set without Path gets that one), and each storage
// key in localStorage and sessionStorage.
func partnerTagJS(host string, cookies, storage []string) string {
	names, _ := json.Marshal(cookies)
	keys, _ := json.Marshal(storage)
	return `(function () {
  var h = ` + strconv.Quote(host) + `;
  (window.partnerTags = window.partnerTags || []).push(h);
  (window.dataLayer = window.dataLayer || []).push({ event: 'tag-loaded:' + h });
  var apex = location.hostname.replace(/^www\./, '');
  var dir = location.pathname.replace(/[^\/]*$/, '');
  var paths = dir == '/' ? ['/'] : ['/', dir];
  ` + string(names) + `.forEach(function (n) {
    paths.forEach(function (p) {
      document.cookie = n + '=' + h + ';Max-Age=7776000;Path=' + p + ';SameSite=Lax';
      document.cookie = n + '=' + h + ';Max-Age=7776000;Path=' + p + ';Domain=' + apex + ';SameSite=Lax';
    });
  });
  ` + string(keys) + `.forEach(function (k) {
    localStorage.setItem(k, h);
    sessionStorage.setItem(k, h);
  });
})();
`
}

// pixelGIF is a transparent 1x1 GIF.
var pixelGIF = []byte{
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
}

// WithPartner returns a copy of e.Config in which partner is switched on or off for
// site, as marketing would do in sites.yaml.
func (e *Env) WithPartner(site, partner string, enabled bool) *config.Config {
	out := &config.Config{File: e.Config.File, Sites: map[string]*consent.Site{}}
	for k, s := range e.Config.Sites {
		c := *s
		c.Partners = slices.Clone(s.Partners)
		if k == site {
			for i := range c.Partners {
				if c.Partners[i].ID == partner {
					c.Partners[i].Enabled = enabled
				}
			}
		}
		out.Sites[k] = &c
	}
	return out
}

// WithLifetimes returns a copy of e.Config in which site keeps a consent and a refusal
// for the given times, as cookie.consent_days and cookie.refusal_days would say.
func (e *Env) WithLifetimes(site string, consentLifetime, refusalLifetime time.Duration) *config.Config {
	out := &config.Config{File: e.Config.File, Sites: map[string]*consent.Site{}}
	for k, s := range e.Config.Sites {
		c := *s
		if k == site {
			c.Cookie.ConsentLifetime = consentLifetime
			c.Cookie.RefusalLifetime = refusalLifetime
		}
		out.Sites[k] = &c
	}
	return out
}

// MustRecords waits until the store holds n records for consentID and returns them.
func (e *Env) MustRecords(tb testing.TB, consentID string, n int) []*consent.Record {
	tb.Helper()
	var recs []*consent.Record
	wait.MustUntil(tb, "the store holds "+strconv.Itoa(n)+" record(s) for consent id "+consentID, func() (bool, string) {
		var err error
		recs, err = e.Store.RecordsByConsent(context.Background(), consentID)
		if err != nil {
			return false, err.Error()
		}
		return len(recs) >= n, strconv.Itoa(len(recs)) + " records"
	})
	if len(recs) != n {
		tb.Fatalf("store holds %d records for consent id %s, want exactly %d", len(recs), consentID, n)
	}
	return recs
}

// EnabledPartners returns the ids of the partners cfg enables for site, in catalog order.
func EnabledPartners(cfg *config.Config, site string) []string {
	var ids []string
	for _, p := range cfg.Sites[site].Partners {
		if p.Enabled {
			ids = append(ids, p.ID)
		}
	}
	return ids
}

// TagHosts returns the partner hosts that granting ids must request: those of the
// partners with at least one script tag.
func TagHosts(cfg *config.Config, site string, ids []string) map[string]bool {
	hosts := map[string]bool{}
	for _, id := range ids {
		p := cfg.Sites[site].Partner(id)
		for _, t := range p.Tags {
			if t.Src != "" {
				hosts[id+partnerDomain] = true
			}
		}
	}
	return hosts
}

// tbWriter sends the server's log to the test's log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Logf("consentd: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}

// hostPage is a plausible home page of one of the sites: some room of its own below
// its content (which the banner must give back as it was), the one script tag in
// <head>, a footer "Cookie settings" link, an advertising snippet that marks the page
// when it runs, and a snippet naming a partner that is not enabled (never to run).
var hostPage = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Lang}}" style="padding-bottom: 7px">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Name}} — Cloud telephony for growing teams</title>
<script src="{{.Backend}}/v1/banner/{{.Site}}.js" async></script>
<style>
  body { margin: 0; font-family: system-ui, sans-serif; color: #1d2433; background: #f6f7fb; }
  header, main, footer { max-width: 60rem; margin: 0 auto; padding: 1rem 1.5rem; }
  .hero { background: #12315c; color: #fff; border-radius: 12px; padding: 2.5rem 2rem; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: 1rem; margin: 1.5rem 0; }
  .card { background: #fff; border-radius: 10px; padding: 1rem 1.25rem; }
  footer { border-top: 1px solid #d5d9e2; margin-top: 2rem; font-size: .9rem; }
  label { display: block; margin: 1rem 0 .25rem; }
  input, select, textarea { font: inherit; width: 100%; max-width: 30rem; }
  footer a { color: inherit; margin-right: 1.25rem; }
</style>
</head>
<body>
<header><strong>{{.Name}}</strong> <nav><a href="#products">Products</a> <a href="#contact">Contact</a></nav></header>
<main>{{if .Embeds}}
  <section id="embeds">
    <h2>Our product video</h2>
    <iframe id="embed-video" title="Product video" width="320" height="180" data-category="advertising" data-partner="{{.Embed}}" data-provider="{{.Provider}}" data-src="http://embed.partner.test:{{.Port}}/video"></iframe>
    <img id="embed-img" alt="" width="1" height="1" data-category="advertising" data-partner="{{.Embed}}" data-src="http://embed.partner.test:{{.Port}}/pixel.gif">
    <iframe id="embed-disabled" title="Disabled partner's video" width="320" height="180" data-category="advertising" data-partner="{{.Disabled}}" data-src="http://embed.partner.test:{{.Port}}/disabled-video"></iframe>
  </section>{{end}}
  <section class="hero"><h1>Cloud telephony for growing teams</h1><p>Numbers in 60 countries and a support team that picks up.</p></section>
  <section class="cards" id="products">
    <div class="card"><h2>Cloud PBX</h2><p>Your company switchboard, hosted in Luxembourg.</p></div>
    <div class="card"><h2>SIP trunks</h2><p>Connect your existing PBX with per-second billing.</p></div>
    <div class="card"><h2>Microsoft Teams</h2><p>Call any number from Teams with Direct Routing.</p></div>
  </section>{{if .Form}}
  <form id="contact-form" action="#sent">
    <h2>Ask for a quote</h2>
    <label for="f-name">Name</label><input id="f-name" name="name" autocomplete="name">
    <label for="f-company">Company</label><input id="f-company" name="company" autocomplete="organization">
    <label for="f-email">E-mail</label><input id="f-email" name="email" type="email" autocomplete="email">
    <label for="f-phone">Phone</label><input id="f-phone" name="phone" type="tel" autocomplete="tel">
    <label for="f-country">Country</label><select id="f-country" name="country"><option>Luxembourg</option><option>Belgium</option><option>France</option></select>
    <label for="f-users">Users</label><input id="f-users" name="users" type="number" min="1">
    <label for="f-numbers">Phone numbers</label><input id="f-numbers" name="numbers" type="number" min="1">
    <label for="f-message">Message</label><textarea id="f-message" name="message" rows="6"></textarea>
    <p><label><input id="f-terms" name="terms" type="checkbox" style="width:auto"> I accept the terms</label></p>
    <button id="f-send">Send</button>
  </form>{{end}}
</main>
<footer id="contact">
  <a href="#imprint">Imprint</a>
  <a href="#privacy">Privacy policy</a>
  <a href="#" data-consent-open>Cookie settings</a>
</footer>
<script type="text/plain" data-category="advertising">
  window.adSnippetRuns = (window.adSnippetRuns || 0) + 1;
  document.documentElement.setAttribute("data-ad-snippet", String(window.adSnippetRuns));
</script>
<script type="text/plain" id="disabled-partner-snippet" data-category="advertising" data-partner="{{.Disabled}}" data-src="http://disabled.partner.test:{{.Port}}/snippet.js"></script>
</body>
</html>
`))
