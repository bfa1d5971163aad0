// Package scantest serves, on loopback, the sites that the scanner's tests scan:
// one clean, and one for each defect a scan must find, with consentd serving their
// banners and fake partners serving their tags. Chromium reaches them by their
// names through HostRules.
package scantest

import (
	_ "embed"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/localserver"
	"github.com/mixvoip/consentd/server"
)

//go:embed sites.yaml
var sitesYAML []byte

// Sites are the running sites.
type Sites struct {
	Config    string // the path of their sites.yaml
	HostRules string // Chromium's --host-resolver-rules that reach them

	mu       sync.Mutex
	sent     []string // "METHOD host path" of every request the sites got other than GET
	visitors []string // hosts outside the sites' origins that were asked for a page
}

// day is a cookie's max-age of one day, for the fake tags' scripts.
const day = 86400

// pages are the sites' pages by host and path. Every page but nobanner.test's loads
// the banner; what each plants is in its head.
var pages = map[string]map[string]string{
	"clean.test": {
		"/": `<a href="/about">About us</a> <a href="/contact#form">Contact</a> <a href="http://elsewhere.test/">Elsewhere</a>
<a href="/brochure.pdf">Brochure</a> <a href="mailto:info@clean.test">Mail</a>
<form id="popup" method="post" action="/popup-form" target="_blank"></form>
<script>document.addEventListener('click', () => { window.open('http://elsewhere.test/popup'); document.getElementById('popup').submit(); });</script>`,
		"/about": `<script>document.cookie = "sid=42; path=/";</script><a href="/">Home</a>`,
		// A form that sends itself, and a page that leaves the site: the scan follows
		// neither, nor the popups that the start page opens on a click in the banner.
		"/contact": `<form method="post" action="/contact"><input name="email" value="a@b.test"></form><script>document.forms[0].submit();</script>`,
		"/news":    `<p>Only in the sitemap.</p><script>setTimeout(() => { location.href = "http://elsewhere.test/"; }, 0);</script>`,
		"/sitemap.xml": `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://clean.test/news</loc></url><url><loc>http://clean.test/about</loc></url></urlset>`,
	},
	"gtag.test":       {"/": `<script async src="http://www.googletagmanager.com/gtag/js?id=AW-12"></script>`},
	"inline.test":     {"/": fmt.Sprintf(`<script>document.cookie = "_track=" + Math.random() + "; max-age=%d; path=/";</script>`, 365*day)},
	"undeclared.test": {"/": ``},
	"lifetime.test":   {"/": ``},
	"broken.test":     {"/": `<a href="/gone">A page that is gone</a>`},
	"nobanner.test":   {"/": ``},
}

// tags are the fake partners' scripts, by host and path.
var tags = map[string]string{
	"tags.partner.test/pixel.js":       fmt.Sprintf(`document.cookie = "_px=1; max-age=%d; path=/"; new Image().src = "http://collect.partner.test/hit";`, 90*day),
	"tags.partner.test/greedy.js":      fmt.Sprintf(`document.cookie = "_gr=1; max-age=%d; path=/"; document.cookie = "_gr_uid=7; max-age=%d; path=/";`, 30*day, 30*day),
	"tags.partner.test/longlived.js":   fmt.Sprintf(`document.cookie = "_ll=1; max-age=%d; path=/";`, 730*day),
	"www.googletagmanager.com/gtag/js": fmt.Sprintf(`document.cookie = "_gcl_au=1; max-age=%d; path=/";`, 90*day),
	"collect.partner.test/hit":         ``,
}

// MustBrowser skips tb only where the browser tests are switched off
// (CONSENTD_SKIP_BROWSER=1); a test that scans fails where no browser exists.
func MustBrowser(tb testing.TB) {
	tb.Helper()
	if os.Getenv("CONSENTD_SKIP_BROWSER") == "1" {
		tb.Skip("CONSENTD_SKIP_BROWSER=1: browser test skipped")
	}
}

// Start serves the sites until tb ends.
func Start(tb testing.TB) *Sites {
	tb.Helper()
	s := &Sites{Config: filepath.Join(tb.TempDir(), "sites.yaml")}
	if err := os.WriteFile(s.Config, sitesYAML, 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(s.Config)
	if err != nil {
		tb.Fatal(err)
	}
	consentd, err := localserver.New(cfg, server.Options{}, "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { consentd.Close() })
	backend := httptest.NewServer(consentd)
	sites := httptest.NewServer(http.HandlerFunc(s.site))
	partners := httptest.NewServer(http.HandlerFunc(partner))
	tb.Cleanup(backend.Close)
	tb.Cleanup(sites.Close)
	tb.Cleanup(partners.Close)
	s.HostRules = strings.Join([]string{
		"MAP consent.test " + backend.Listener.Addr().String(),
		"MAP *.partner.test " + partners.Listener.Addr().String(),
		"MAP www.googletagmanager.com " + partners.Listener.Addr().String(),
		"MAP *.test " + sites.Listener.Addr().String(),
		"MAP * ~NOTFOUND",
	}, ", ")
	return s
}

func (s *Sites) site(w http.ResponseWriter, r *http.Request) {
	host := strings.Split(r.Host, ":")[0]
	s.mu.Lock()
	if r.Method != http.MethodGet {
		s.sent = append(s.sent, r.Method+" "+host+" "+r.URL.Path)
	}
	if pages[host] == nil {
		s.visitors = append(s.visitors, host)
	}
	s.mu.Unlock()
	body, ok := pages[host][r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if strings.HasSuffix(r.URL.Path, ".xml") {
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprint(w, body)
		return
	}
	banner := `<script src="http://consent.test/v1/banner/` + host + `.js" async></script>`
	if host == "nobanner.test" {
		banner = ""
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title>%s</head><body><h1>%s</h1>%s</body></html>", host, banner, host, body)
}

func partner(w http.ResponseWriter, r *http.Request) {
	body, ok := tags[strings.Split(r.Host, ":")[0]+r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/javascript")
	fmt.Fprint(w, body)
}

// Sent returns the requests other than GET that the sites got: a scan sends none.
func (s *Sites) Sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sent...)
}

// Strangers returns the hosts outside the sites whose pages the browser asked for.
func (s *Sites) Strangers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.visitors...)
}
