// Package server is consentd's HTTP layer on Echo v4: routes, handlers, CORS and the
// one place where domain errors become status codes. Echo types stay in this package
// so that a move to Echo v5 touches nothing else.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/proof"
)

// Options configure a Server.
type Options struct {
	// Demo serves /demo/{site} pages and accepts consents posted from the server's
	// own origin. Off in production: it widens the origin check to that one origin.
	Demo bool
	// TrustedProxies are the networks whose X-Forwarded-For is believed; empty means
	// the client's address is the connection's.
	TrustedProxies []netip.Prefix
	// Keys sign every record's receipt; GET /v1/keys publishes their public halves.
	// Required.
	Keys   *proof.Keyring
	Logger *slog.Logger
	Now    func() time.Time // for tests; time.Now by default
}

// Server serves the banner, records consents and answers the visitor's requests.
type Server struct {
	echo    *echo.Echo
	store   consent.Store
	opts    Options
	sites   atomic.Pointer[map[string]*site]
	metrics *metrics

	tokens atomic.Pointer[auth.Tokens]
}

// site is one site as currently served.
type site struct {
	*consent.Site
	bundle     *banner.Bundle
	demoBundle *banner.Bundle // partner tags pointed at /demo/partner/, when Demo is on
}

// New returns a Server that stores records in store. Call Load before serving. It
// panics without opts.Keys: a record without a receipt proves nothing.
func New(store consent.Store, opts Options) *Server {
	if opts.Keys == nil {
		panic("server: Options.Keys is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{store: store, opts: opts, metrics: newMetrics()}
	empty := map[string]*site{}
	s.sites.Store(&empty)

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(opts.TrustedProxies)
	e.GET("/v1/banner/:file", s.handleBanner)
	e.POST("/v1/consents", s.handleCreateConsent, s.cors)
	e.OPTIONS("/v1/consents", s.handlePreflight, s.cors)
	e.GET("/v1/consents/:consent_id", s.handleGetConsents, s.cors)
	e.GET("/v1/keys", s.handleKeys)
	e.GET("/healthz", s.handleHealth)
	e.GET("/readyz", s.handleHealth)
	e.GET("/metrics", echo.WrapHandler(s.metrics.handler()))
	s.routeDPO(e)
	if opts.Demo {
		e.GET("/demo/:site", s.handleDemoPage)
		e.GET("/demo/:site/banner.js", s.handleDemoBanner)
		e.GET("/demo/partner/:file", s.handleDemoPartner)
	}
	s.echo = e
	return s
}

// ServeHTTP makes the Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Load builds every site's banner from cfg and starts serving them, all at once. On
// error nothing changes: the previous configuration keeps serving. A banner that
// would come out the same as one being served is not built again.
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

func (s *Server) site(key string) *site { return (*s.sites.Load())[key] }

// handleKeys publishes the public keys that verify receipts, old ones included, so
// that anyone can check a receipt without trusting this server.
func (s *Server) handleKeys(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	return c.JSON(http.StatusOK, map[string]any{"keys": s.opts.Keys.Public()})
}

func (s *Server) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// handleError is the one place where errors become HTTP answers. Every error body has
// the shape {"error":{"code","message"}}; internal details never reach the client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, code, msg := describe(err)
	s.metrics.errors.WithLabelValues(strconv.Itoa(status), code).Inc()
	if status >= 500 {
		s.opts.Logger.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", "1")
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, msg
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, body)
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
	case http.StatusRequestEntityTooLarge:
		return consent.ETooLarge
	case http.StatusUnsupportedMediaType:
		return consent.EUnsupported
	}
	if status < 500 {
		return consent.EInvalid
	}
	return consent.EInternal
}

func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	var opts []echo.TrustOption
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(netipToIPNet(p)))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
