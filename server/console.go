package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	esbuild "github.com/evanw/esbuild/pkg/api"
	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
)

// The DPO's console at /dpo/: pages drawn on the server from the same store and
// the same checks as the DPO API, for people who are not developers. A DPO signs
// in with a DPO token, which the browser then keeps in a cookie that no script can
// read (HttpOnly), sent over HTTPS only (Secure; browsers make an exception for
// localhost) and never with a request another site starts (SameSite=Strict). Every
// page is a call of the audit log, as an API call is; every form that changes
// something also carries a token derived from the session (CSRF).

//go:embed console/*.html console/console.css console/console.ts
var consoleFiles embed.FS

const (
	sessionCookie = "consentd_dpo"
	// sessionLifetime is how long a browser keeps the session: a working day. The
	// token's revocation ends it at once.
	sessionLifetime = 8 * time.Hour
	consolePath     = "/dpo"
	// maxConsoleForm bounds a form posted to the console: a token, a CSRF token.
	maxConsoleForm = 8 << 10
	// consoleCSP allows the console's own script and stylesheet and nothing else:
	// no inline script or style, no framing, no form sent elsewhere.
	consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// consoleAssets are the console's templates, script and stylesheet, built once.
type consoleAssets struct {
	pages map[string]*template.Template // by page name, each with the layout
	// files are the script and stylesheet by their names under /dpo/assets/,
	// which carry their content's hash: cached for good, changed with consentd.
	files   map[string][]byte
	JS, CSS string // their paths
}

var loadConsoleAssets = sync.OnceValues(buildConsoleAssets)

func buildConsoleAssets() (*consoleAssets, error) {
	a := &consoleAssets{pages: map[string]*template.Template{}, files: map[string][]byte{}}
	for _, f := range []struct {
		name   string
		loader esbuild.Loader
		path   *string
	}{{"console.ts", esbuild.LoaderTS, &a.JS}, {"console.css", esbuild.LoaderCSS, &a.CSS}} {
		src, err := consoleFiles.ReadFile("console/" + f.name)
		if err != nil {
			return nil, err
		}
		out, err := minify(src, f.loader, f.name)
		if err != nil {
			return nil, fmt.Errorf("server: console: %w", err)
		}
		sum := sha256.Sum256(out)
		ext := path.Ext(f.name)
		name := strings.TrimSuffix(f.name, ext) + "." + hex.EncodeToString(sum[:6]) + strings.Replace(ext, ".ts", ".js", 1)
		a.files[name] = out
		*f.path = consolePath + "/assets/" + name
	}
	pages, err := fs.Glob(consoleFiles, "console/*.html")
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		name := strings.TrimSuffix(path.Base(p), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(consoleFuncs).ParseFS(consoleFiles, "console/layout.html", p)
		if err != nil {
			return nil, fmt.Errorf("server: console: %w", err)
		}
		a.pages[name] = t
	}
	return a, nil
}

// consolePage is what every page's template gets.
type consolePage struct {
	Title  string
	Nav    string // the menu entry of the page
	Token  *auth.Token
	CSRF   string
	Assets *consoleAssets
	Error  string // a problem to show above the page's content
	Data   any
}

// routeConsole routes the console on e, beside the DPO API.
func (s *Server) routeConsole(e *echo.Echo) {
	e.GET(consolePath, func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, consolePath+"/") })
	get(e, consolePath+"/assets/:file", s.handleConsoleAsset)
	get(e, consolePath+"/signin", s.handleSignInPage)
	e.POST(consolePath+"/signin", s.handleSignIn, consoleForm, s.audited(formToken))

	g := e.Group(consolePath, s.audited(sessionSecret))
	get(g, "/", s.handleOverview)
	get(g, "/consents", s.handleProofPage)
	get(g, "/consents/:consent_id/proof.json", s.handleProofFile)
	get(g, "/export", s.handleExportPage)
	get(g, "/export/records", s.handleExport)
	get(g, "/erase", s.handleErasePage)
	g.POST("/consents/:consent_id/erase", s.handleConsoleErase, consoleForm, checkCSRF)
	get(g, "/audit", s.handleAuditLogPage)
	get(g, "/log", s.handleLogPage)
	get(g, "/scans", s.handleScansPage)
	get(g, "/scans/:report", s.handleScanReport)
	get(g, "/log/verify", s.handleVerifyProgress, storeWide)
	g.POST("/log/verify", s.handleVerifyNow, consoleForm, checkCSRF, storeWide)
	g.POST("/signout", s.handleSignOut, consoleForm, checkCSRF)
}

// isConsole reports whether the request c is one of the console's, whose errors
// are pages, not JSON.
func isConsole(c echo.Context) bool {
	p := c.Request().URL.Path
	return p == consolePath || strings.HasPrefix(p, consolePath+"/")
}

// sessionSecret returns the token secret of the session cookie, "" without one.
func sessionSecret(c echo.Context) string {
	cookie, err := c.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	return cookie.Value
}

// formToken returns the token secret the sign-in form sends.
func formToken(c echo.Context) string { return strings.TrimSpace(c.FormValue("token")) }

// csrfToken returns the token a form of the session of secret carries: a page of
// the console has it, another site cannot compute it.
func csrfToken(secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("consentd console form"))
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// consoleForm bounds a form's size and refuses a form a browser sends from another
// site: browsers say where a request comes from (Sec-Fetch-Site, Origin), and
// SameSite=Strict keeps the session cookie off it anyway; this also covers the
// sign-in form, which has no session yet.
func consoleForm(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		r.Body = http.MaxBytesReader(c.Response(), r.Body, maxConsoleForm)
		ok := true
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
			ok = site == "same-origin"
		} else if origin := r.Header.Get("Origin"); origin != "" {
			u, err := url.Parse(origin)
			ok = err == nil && u.Host == r.Host
		}
		if !ok {
			return consent.Errorf(consent.EForbidden, "this form was sent from another site: open the console at %s and send it from there", consolePath+"/")
		}
		return next(c)
	}
}

// checkCSRF refuses a form without the session's CSRF token.
func checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		want := csrfToken(sessionSecret(c))
		if subtle.ConstantTimeCompare([]byte(c.FormValue("csrf")), []byte(want)) != 1 {
			return consent.Errorf(consent.EForbidden, "this form is not one of this session's pages (stale, or sent from elsewhere): reload the page and send it again")
		}
		return next(c)
	}
}

// render answers the page name with p, filled in for the request c.
func (s *Server) render(c echo.Context, status int, name string, p *consolePage) error {
	assets, err := loadConsoleAssets()
	if err != nil {
		return err
	}
	p.Assets = assets
	if t, ok := c.Get(tokenKey).(*auth.Token); ok {
		p.Token = t
		p.CSRF = csrfToken(sessionSecret(c))
	}
	var buf bytes.Buffer
	if err := assets.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// consoleError answers an error of a console request as a page: a request without
// a valid session goes to the sign-in page, any other error says what went wrong.
func (s *Server) consoleError(c echo.Context, status int, msg string) {
	r := c.Request()
	switch {
	case status == http.StatusUnauthorized && r.URL.Path == consolePath+"/signin":
		msg = "This token is not valid: unknown, revoked or mistyped."
	case status == http.StatusUnauthorized:
		if sessionSecret(c) != "" {
			c.SetCookie(sessionCookieOf("", -1)) // a revoked token's
		}
		_ = c.Redirect(http.StatusSeeOther, consolePath+"/signin")
		return
	}
	name, title := "error", http.StatusText(status)
	if r.URL.Path == consolePath+"/signin" {
		name, title = "signin", "Sign in"
	}
	if err := s.render(c, status, name, &consolePage{Title: title, Error: msg}); err != nil {
		s.errorLog.log("console error page failed", err)
		_ = c.String(status, msg)
	}
}

// sessionCookieOf returns the session cookie holding secret for maxAge seconds
// (-1 removes it).
func sessionCookieOf(secret string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: sessionCookie, Value: secret, Path: consolePath, MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode}
}

func (s *Server) handleConsoleAsset(c echo.Context) error {
	assets, err := loadConsoleAssets()
	if err != nil {
		return err
	}
	file := c.Param("file")
	data, ok := assets.files[file]
	if !ok {
		return echo.ErrNotFound
	}
	contentType := "text/css; charset=utf-8"
	if strings.HasSuffix(file, ".js") {
		contentType = "text/javascript; charset=utf-8"
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, contentType, data)
}

// handleSignInPage shows the sign-in form, or the overview to a browser with a
// session: the overview checks the session, as every page does, counted and
// audited, and sends a bad one back here without its cookie.
func (s *Server) handleSignInPage(c echo.Context) error {
	if sessionSecret(c) != "" {
		return c.Redirect(http.StatusSeeOther, consolePath+"/")
	}
	return s.render(c, http.StatusOK, "signin", &consolePage{Title: "Sign in"})
}

// handleSignIn keeps the token, which audited has accepted, in the session cookie.
func (s *Server) handleSignIn(c echo.Context) error {
	c.SetCookie(sessionCookieOf(formToken(c), int(sessionLifetime/time.Second)))
	return c.Redirect(http.StatusSeeOther, consolePath+"/")
}

func (s *Server) handleSignOut(c echo.Context) error {
	c.SetCookie(sessionCookieOf("", -1))
	return c.Redirect(http.StatusSeeOther, consolePath+"/signin")
}
