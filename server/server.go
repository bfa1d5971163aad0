// Package server is consentd's HTTP layer on Echo v4: routes, handlers, CORS and the
// one place where domain errors become status codes. Echo types stay in this package
// so that a move to Echo v5 touches nothing else.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/metrics"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/scan"
)

// Options configure a Server.
type Options struct {
	// Demo serves /demo/{site} pages and accepts consents posted from the server's
	// own origin. Off in production: it widens the origin check to that one origin.
	Demo bool
	// TrustedProxies are the networks whose X-Forwarded-For is believed, and only
	// those; empty means the client's address is the connection's.
	TrustedProxies []netip.Prefix
	// Keys sign the store's log; GET /v1/keys publishes their public halves, with
	// Origin, the log's name. Both required.
	Keys   *proof.Keyring
	Origin string
	// Admin serves /metrics on AdminHandler only, instead of beside the public
	// endpoints; with DPOOnAdmin the DPO API moves there too.
	Admin      bool
	DPOOnAdmin bool
	// ConsentLimit limits the decisions each client (IP prefix) may post, and
	// AuthFailureLimit its calls to the DPO API with a missing or wrong token; both
	// are answered 429 beyond. MaxClients bounds how many clients' limits are kept
	// (DefaultMaxClients if 0).
	ConsentLimit     Limit
	AuthFailureLimit Limit
	MaxClients       int
	// LimitDelay holds the 429 of a client over a limit this long (at most): a
	// client that keeps calling, each call waiting for the last, is slowed to a few
	// calls a second instead of taking the CPU from the other visitors. Zero
	// answers at once.
	LimitDelay time.Duration
	// Disk refuses new records while the disk holding the store is short of space;
	// the metrics show the space left in its Dir.
	Disk DiskGuard
	// Scans are the reports of consentd scan that the console shows; nil for none.
	Scans *scan.Dir
	// Metrics are where the server counts and times what it does, served at
	// /metrics; one server per Metrics. New makes its own if nil.
	Metrics *metrics.Metrics
	// Logger gets one line per request (route, status, duration, request id) and the
	// errors.
	Logger *slog.Logger
	Now    func() time.Time // for tests; time.Now by default
}

// Server serves the banner, records consents and answers the visitor's requests.
type Server struct {
	public  *echo.Echo
	admin   *echo.Echo // public itself unless Options.Admin
	store   consent.Store
	opts    Options
	sites   atomic.Pointer[map[string]*site]
	metrics *metrics.Metrics

	tokens atomic.Pointer[tokenFile]

	consentLimits *clientLimits
	authFailures  *clientLimits
	refusals      *refusals
	disk          *diskCheck
	errorLog      *errorLog
	warnForwarded sync.Once
	held          chan struct{} // a place for each 429 that LimitDelay holds
	verifying     verifyRun     // the console's "verify now"
	// followed is the last consistency proof served: what a monitor of the log asks
	// for on each run, which the console's log page shows.
	followed atomic.Pointer[followed]
}

// site is one site as currently served.
type site struct {
	*consent.Site
	bundle     *banner.Bundle
	demoBundle *banner.Bundle          // partner tags pointed at /demo/partner/, when Demo is on
	visitor    map[string]*visitorPage // the visitor's page, by language
	// The bundles served before, newest first: a first-layer script still in a
	// browser's cache loads the second layer of its own configuration.
	earlier, demoEarlier []*banner.Bundle
}

// keptBundles is how many bundles a site keeps served before the current one: more
// than sites.yaml changes within a script's cache lifetime, as a rule.
const keptBundles = 4

// earlier returns the bundles served before next, newest first, when was served
// before it and before that those of before.
func earlier(next, was *banner.Bundle, before []*banner.Bundle) []*banner.Bundle {
	if was == nil || was == next {
		return before
	}
	kept := append([]*banner.Bundle{was}, before...)
	return kept[:min(len(kept), keptBundles)]
}

// withFingerprint returns the one of current and earlier with fingerprint f, current
// for f "", or nil.
func withFingerprint(current *banner.Bundle, earlier []*banner.Bundle, f string) *banner.Bundle {
	if f == "" || current.Fingerprint == f {
		return current
	}
	for _, b := range earlier {
		if b.Fingerprint == f {
			return b
		}
	}
	return nil
}

// New returns a Server that stores records in store. Call Load before serving, and
// Close after. It panics without opts.Keys and opts.Origin: receipts that nobody can
// verify prove nothing.
func New(store consent.Store, opts Options) *Server {
	if opts.Keys == nil || opts.Origin == "" {
		panic("server: Options.Keys and Options.Origin are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New("dev")
	}
	s := &Server{
		store:         store,
		opts:          opts,
		metrics:       opts.Metrics,
		consentLimits: newClientLimits(opts.ConsentLimit, opts.MaxClients),
		authFailures:  newClientLimits(opts.AuthFailureLimit, opts.MaxClients),
		disk:          &diskCheck{guard: opts.Disk},
		errorLog:      newErrorLog(opts.Logger, opts.Now),
		held:          make(chan struct{}, maxHeld),
	}
	s.refusals = &refusals{audit: store, log: s.errorLog, byKey: map[refusalKey]*consent.AuditEntry{}}
	s.metrics.WatchTokenFile(func() bool {
		tf := s.tokens.Load()
		return tf != nil && tf.tokens != nil && tf.err == nil
	})
	if opts.Disk.Dir != "" {
		s.metrics.WatchDiskFree(func() (uint64, error) { return freeSpace(opts.Disk.Dir) })
	}
	empty := map[string]*site{}
	s.sites.Store(&empty)

	s.public = s.newEcho()
	s.public.Use(s.noteUntrustedForwarding)
	get(s.public, "/v1/banner/:file", s.handleBanner)
	get(s.public, "/v1/banner/:site/:file", s.handlePrefs)
	s.public.POST("/v1/consents", s.handleCreateConsent, s.cors, s.limitConsents)
	s.public.OPTIONS("/v1/consents", s.handlePreflight, s.cors)
	get(s.public, "/v1/consents/:consent_id", s.handleGetConsents, s.cors)
	get(s.public, "/v1/keys", s.handleKeys)
	s.routeLog(s.public)
	get(s.public, "/v1/visitor/:site", s.handleVisitor)
	s.admin = s.public
	if opts.Admin {
		s.admin = s.newEcho()
	}
	for _, e := range []*echo.Echo{s.public, s.admin} {
		get(e, "/healthz", s.handleHealth)
		get(e, "/readyz", s.handleReady)
	}
	if opts.Admin {
		// The DPO commands that check what they fetch (backup, verify) take the keys
		// from where they call the DPO API, which may be the admin listener.
		get(s.admin, "/v1/keys", s.handleKeys)
	}
	get(s.admin, "/metrics", echo.WrapHandler(s.metrics.Handler()))
	dpo := s.public
	if opts.DPOOnAdmin {
		dpo = s.admin
	}
	s.routeDPO(dpo)
	s.routeConsole(dpo)
	if opts.Demo {
		get(s.public, "/demo/:site", s.handleDemoPage)
		get(s.public, "/demo/:site/banner.js", s.handleDemoBanner)
		get(s.public, "/demo/:site/banner/:file", s.handleDemoPrefs)
		get(s.public, "/demo/partner/:file", s.handleDemoPartner)
	}
	return s
}

func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(s.opts.TrustedProxies)
	e.Use(s.logRequests)
	return e
}

// router is where routes go: an *echo.Echo or an *echo.Group.
type router interface {
	Match(methods []string, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) []*echo.Route
}

// get routes GET and HEAD of path to h: a HEAD is answered as its GET would be,
// without the body.
func get(r router, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	r.Match([]string{http.MethodGet, http.MethodHead}, path, h, m...)
}

// Close writes what the server still holds for the store and the log: the counted
// refusals of the DPO API, and the count of errors not logged. Call it after the
// HTTP server has shut down, before the store closes.
func (s *Server) Close() error {
	s.verifying.stop()
	s.errorLog.flush()
	return s.refusals.flush()
}

// ServeHTTP makes the Server an http.Handler: the public endpoints, and with
// Options.Admin unset the admin ones too.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.public.ServeHTTP(w, r) }

// AdminHandler serves what Options.Admin keeps off the public listener: /metrics,
// the DPO API with Options.DPOOnAdmin, /healthz and /readyz.
func (s *Server) AdminHandler() http.Handler { return s.admin }

// Load builds every site's banner and visitor page from cfg and starts serving them,
// all at once. On error nothing changes: the previous configuration keeps serving. A
// banner that would come out the same as one being served is not built again.
func (s *Server) Load(cfg *config.Config) error {
	prev := *s.sites.Load()
	var served []*banner.Bundle
	for _, st := range prev {
		served = append(served, st.bundle, st.demoBundle)
	}
	next := make(map[string]*site, len(cfg.Sites))
	var builds []build
	for _, key := range cfg.SiteKeys() {
		st := &site{Site: cfg.Sites[key]}
		next[key] = st
		builds = append(builds, build{what: "banner", site: st.Site, into: &st.bundle})
		if s.opts.Demo {
			builds = append(builds, build{what: "demo banner", site: st.Site, opts: banner.Options{RewriteSrc: demoPartnerURL}, into: &st.demoBundle})
		}
	}
	if err := buildAll(banner.NewCache(served...), builds); err != nil {
		return err
	}
	for key, st := range next {
		var err error
		if st.visitor, err = visitorPages(st.Site); err != nil {
			return err
		}
		if old := prev[key]; old != nil {
			st.earlier = earlier(st.bundle, old.bundle, old.earlier)
			st.demoEarlier = earlier(st.demoBundle, old.demoBundle, old.demoEarlier)
		}
	}
	// What a banner shows is stored before it is served: every record can then name
	// the snapshot of what its visitor saw. A bundle served before has its snapshot
	// stored already.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, key := range cfg.SiteKeys() {
		b := next[key].bundle
		if old := prev[key]; old != nil && old.bundle == b {
			continue
		}
		// On a copy: the bundle is shared, with later loads and with the requests
		// that serve it.
		snap := *b.Snapshot
		snap.CreatedAt = s.opts.Now().UTC()
		if err := s.store.PutSnapshot(ctx, &snap); err != nil {
			return fmt.Errorf("server: store the snapshot of %s: %w", key, err)
		}
	}
	s.sites.Store(&next)
	return nil
}

// build is one bundle that Load needs.
type build struct {
	what string // for errors: "banner", "demo banner"
	site *consent.Site
	opts banner.Options
	into **banner.Bundle
}

// buildAll makes the bundles of builds in parallel, no more at once than GOMAXPROCS:
// a build keeps a CPU busy, more at once would only wait for one. The error names
// every bundle that failed.
func buildAll(bundles *banner.Cache, builds []build) error {
	errs := make([]error, len(builds))
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, b := range builds {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			bundle, err := bundles.Build(b.site, b.opts)
			if err != nil {
				errs[i] = fmt.Errorf("server: build %s for %s: %w", b.what, b.site.Key, err)
				return
			}
			*b.into = bundle
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// servedSite returns the site served under key, nil if there is none.
func (s *Server) servedSite(key string) *site { return (*s.sites.Load())[key] }

// handleError is the one place where errors become HTTP answers. Every error body has
// the shape {"error":{"code","message"}}; internal details never reach the client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if clientGone(c, err) {
		// Nobody reads the answer; 499 (nginx's "client closed request") goes to
		// the metrics and the audit log, not to the error log.
		s.metrics.ErrorAnswered(statusClientClosed, codeClientClosed)
		_ = c.NoContent(statusClientClosed)
		return
	}
	status, code, msg := describe(err)
	s.metrics.ErrorAnswered(status, code)
	if status >= 500 {
		s.errorLog.log("request failed", err, "status", status, "code", code, "method", c.Request().Method, "path", loggedPath(c), "request_id", requestIDOf(c))
	}
	var e *consent.Error
	switch {
	case errors.As(err, &e) && e.RetryAfter > 0:
		c.Response().Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(e.RetryAfter)))
	case status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests:
		c.Response().Header().Set("Retry-After", "1")
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if isConsole(c) {
		s.consoleError(c, status, msg)
		return
	}
	// JSONBlob, not JSON: Echo's JSON parses the whole query string to look for
	// ?pretty, and an attacker's call may carry 16 KiB of it; an error answer must
	// cost next to nothing.
	body, _ := json.Marshal(errorBody(code, msg)) // cannot fail: two strings
	_ = c.JSONBlob(status, body)
}

// loggedPath is the path of c's request as a log may keep it: a consent id in it,
// the key to its visitor's records at GET /v1/consents/{consent_id}, is replaced by
// the route's placeholder (docs/security.md).
func loggedPath(c echo.Context) string {
	if c.Param("consent_id") != "" {
		return strings.ReplaceAll(c.Path(), ":consent_id", "{consent_id}")
	}
	return c.Request().URL.Path
}

func errorBody(code, msg string) api.Error {
	return api.Error{Error: api.ErrorDetail{Code: code, Message: msg}}
}

// statusClientClosed is the status of a request whose client went away before its
// answer: no HTTP status says it, nginx's 499 is the usual one.
const (
	statusClientClosed = 499
	codeClientClosed   = "client_closed"
)

// clientGone reports whether err comes from the client having gone away (its
// connection closed, or half-closed) rather than from the server.
func clientGone(c echo.Context, err error) bool {
	return c.Request().Context().Err() != nil && errors.Is(err, context.Canceled)
}

func statusOf(code string) int {
	switch code {
	case consent.EInvalid:
		return http.StatusBadRequest
	case consent.EForbidden:
		return http.StatusForbidden
	case consent.EUnauthorized:
		return http.StatusUnauthorized
	case consent.ENotFound:
		return http.StatusNotFound
	case consent.ETooLarge:
		return http.StatusRequestEntityTooLarge
	case consent.EUnsupported:
		return http.StatusUnsupportedMediaType
	case consent.EUnavailable:
		return http.StatusServiceUnavailable
	case consent.ERateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// describe returns the status, code and client-safe message an error is answered
// with: the one mapping from errors to HTTP.
func describe(err error) (status int, code, msg string) {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg = http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		return he.Code, httpCode(he.Code), msg
	}
	code = consent.ErrorCode(err)
	return statusOf(code), code, consent.ErrorMessage(err)
}

// httpCode names the errors that Echo itself raises (no route, wrong method).
func httpCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return consent.ENotFound
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge, http.StatusRequestHeaderFieldsTooLarge:
		return consent.ETooLarge
	case http.StatusNotImplemented:
		return "not_implemented"
	case http.StatusUnsupportedMediaType:
		return consent.EUnsupported
	}
	if status < 500 {
		return consent.EInvalid
	}
	return consent.EInternal
}

// ipExtractor believes X-Forwarded-For from the trusted networks and from nowhere
// else: Echo would by default also believe any loopback, link-local or private
// address, and every client on such a network could forge the address it records.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(netipToIPNet(p)))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
