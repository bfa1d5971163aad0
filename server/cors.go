package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// cors allows the sites' own origins, and no others, to read the consent API's
// answers in the browser. The site is known only from the body, so any configured
// site's origin passes here; handleCreateConsent then checks the origin against the
// named site. A POST's answer may be read from any origin: one from an origin that
// its site does not allow is refused, and stores nothing, and the banner must be
// able to read that refusal, or it takes it for a network error and sends again.
func (s *Server) cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Add("Vary", "Origin")
		req := c.Request()
		if origin := req.Header.Get("Origin"); origin != "" && (req.Method == http.MethodPost || s.anySiteAllows(req)) {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		return next(c)
	}
}

func (s *Server) handlePreflight(c echo.Context) error {
	h := c.Response().Header()
	if h.Get("Access-Control-Allow-Origin") == "" {
		return c.NoContent(http.StatusForbidden)
	}
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "86400") // Chromium caps this at 2 hours
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) anySiteAllows(r *http.Request) bool {
	for _, st := range *s.sites.Load() {
		if s.originAllowed(st, r) {
			return true
		}
	}
	return false
}

// originAllowed reports whether the request's Origin belongs to the site, or, with
// demo pages on, is the server's own origin (where the demo pages live).
func (s *Server) originAllowed(st *site, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	if st.HasOrigin(origin) {
		return true
	}
	host := s.demoHost(r)
	return host != "" && (origin == "http://"+host || origin == "https://"+host)
}
