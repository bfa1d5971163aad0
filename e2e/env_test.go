package e2e

import (
	"context"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
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

// Env is one isolated world for a test case: a local server on its own port that
// plays the four sites, the consentd backend (with its own bbolt file) and the
// partners' tag hosts.
type Env struct {
	Port     string
	Config   *config.Config // as first loaded; never modified, copy it to change it
	Server   *server.Server
	Store    *bolt.Store
	Requests *Requests

	pages map[string]pageData // per site key, fixed at start
}

type pageData struct {
	Site     string
	Name     string
	Lang     string
	Port     string
	Disabled string // a partner id that is not enabled for the site
}

// MustEnv starts an Env for tb that serves site, and stops it when tb ends. Only
// that site's banner is built: each build (esbuild, brotli at best quality) costs
// about 0.3 s under -race, and a case visits one site.
func MustEnv(tb testing.TB, site string) *Env {
	tb.Helper()
	e := &Env{Requests: &Requests{}, pages: map[string]pageData{}}
	ts := httptest.NewUnstartedServer(e)
	_, port, err := net.SplitHostPort(ts.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	e.Port = port

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
			for j := range p.Tags {
				if p.Tags[j].Src != "" {
					p.Tags[j].Src = "http://" + p.ID + partnerDomain + ":" + port + "/tag.js"
				}
			}
		}
		disabled := "not-in-sites-yaml"
		for _, p := range site.Partners {
			if !p.Enabled {
				disabled = p.ID
				break
			}
		}
		e.pages[key] = pageData{Site: key, Name: strings.ToUpper(key[:1]) + key[1:], Lang: site.Languages[0], Port: port, Disabled: disabled}
	}
	e.Config = cfg

	e.Store, err = bolt.Open(filepath.Join(tb.TempDir(), "consents.db"))
	if err != nil {
		tb.Fatal(err)
	}
	e.Server = server.New(e.Store, server.Options{Logger: slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
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

// ServeHTTP dispatches by host name, recording every request first.
func (e *Env) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	e.Requests.add(Request{Host: host, Method: r.Method, Path: r.URL.Path, At: time.Now()})
	switch {
	case host == backendHost:
		e.Server.ServeHTTP(w, r)
	case strings.HasSuffix(host, partnerDomain):
		// A partner's tag: it only says that it ran. no-store: a reload must ask again.
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "(window.partnerTags=window.partnerTags||[]).push("+strconv.Quote(host)+");\n")
	default:
		pd, ok := e.pages[strings.TrimPrefix(host, "www.")]
		if !ok || r.URL.Path != "/" {
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

// MustRecords waits until the store holds n records for consentID and returns them.
func (e *Env) MustRecords(tb testing.TB, consentID string, n int) []*consent.Record {
	tb.Helper()
	var recs []*consent.Record
	MustEventually(tb, "the store holds "+strconv.Itoa(n)+" record(s) for consent id "+consentID, func() (bool, string) {
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

// PollTimeout bounds every wait for a condition; tests never assert on elapsed time.
const PollTimeout = 5 * time.Second

// MustEventually polls cond until it holds, failing tb with what and cond's last
// detail after PollTimeout.
func MustEventually(tb testing.TB, what string, cond func() (ok bool, detail string)) {
	tb.Helper()
	deadline := time.Now().Add(PollTimeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting until %s (last: %s)", PollTimeout, what, detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tbWriter sends the server's log to the test's log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Logf("consentd: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}

// hostPage is a plausible home page of one of the sites: the one script tag in
// <head>, a footer "Cookie settings" link, an advertising snippet that marks the page
// when it runs, and a snippet naming a partner that is not enabled (never to run).
var hostPage = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Name}} — Cloud telephony for growing teams</title>
<script src="http://consent.test:{{.Port}}/v1/banner/{{.Site}}.js" async></script>
<style>
  body { margin: 0; font-family: system-ui, sans-serif; color: #1d2433; background: #f6f7fb; }
  header, main, footer { max-width: 60rem; margin: 0 auto; padding: 1rem 1.5rem; }
  .hero { background: #12315c; color: #fff; border-radius: 12px; padding: 2.5rem 2rem; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: 1rem; margin: 1.5rem 0; }
  .card { background: #fff; border-radius: 10px; padding: 1rem 1.25rem; }
  footer { border-top: 1px solid #d5d9e2; margin-top: 2rem; padding-bottom: 8rem; font-size: .9rem; }
  footer a { color: inherit; margin-right: 1.25rem; }
</style>
</head>
<body>
<header><strong>{{.Name}}</strong> <nav><a href="#products">Products</a> <a href="#contact">Contact</a></nav></header>
<main>
  <section class="hero"><h1>Cloud telephony for growing teams</h1><p>Numbers in 60 countries and a support team that picks up.</p></section>
  <section class="cards" id="products">
    <div class="card"><h2>Cloud PBX</h2><p>Your company switchboard, hosted in Luxembourg.</p></div>
    <div class="card"><h2>SIP trunks</h2><p>Connect your existing PBX with per-second billing.</p></div>
    <div class="card"><h2>Microsoft Teams</h2><p>Call any number from Teams with Direct Routing.</p></div>
  </section>
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
