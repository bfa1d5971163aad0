package server

import (
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mixvoip/consentd/banner"
)

// Routes lists "METHOD /path" for every route s serves on its public and admin
// handlers, so that the tests in package server_test can hold them against
// openapi.yaml without Echo leaking into the API.
func Routes(s *Server) []string {
	var out []string
	for _, e := range []*echo.Echo{s.public, s.admin} {
		for _, r := range e.Routes() {
			// Echo adds these catch-alls for the DPO group's middleware; they answer
			// 401 or 404 and are no operation of their own. HEAD is answered as GET
			// is, on every GET route (RFC 9110, section 9.3.2).
			if r.Method != echo.RouteNotFound && r.Method != http.MethodHead && !slices.Contains(out, r.Method+" "+r.Path) {
				out = append(out, r.Method+" "+r.Path)
			}
		}
	}
	return out
}

// ClientLimits is the per-client rate limiter, for the tests of its memory bound.
type ClientLimits struct{ cl *clientLimits }

// NewClientLimitsForTest returns the limits of l for up to size clients.
func NewClientLimitsForTest(l Limit, size int) ClientLimits {
	return ClientLimits{newClientLimits(l, size)}
}

// Take spends one event of client at now.
func (c ClientLimits) Take(client string, now time.Time) error { return c.cl.take(client, now) }

// Len is how many clients' limits are kept.
func (c ClientLimits) Len() int { return c.cl.kept() }

// Bundles returns the bundles s serves for site, its banner's and its demo page's, so
// that tests can tell a bundle reused by Load from one built again.
func Bundles(s *Server, site string) (bundle, demo *banner.Bundle) {
	st := s.servedSite(site)
	return st.bundle, st.demoBundle
}

// SetErrorLogEvery sets how often s writes one kind of error at most, for tests
// that need more or less than the 10 s of real time.
func SetErrorLogEvery(s *Server, d time.Duration) { s.errorLog.every = d }

// Held is how many 429s s holds now (see Options.LimitDelay).
func Held(s *Server) int { return len(s.held) }
