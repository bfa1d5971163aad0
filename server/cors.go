package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// cors allows the sites' own origins, and no others, to call the consent API from the
// browser. The site is known only from the body, so any configured site's origin
// passes here; handleCreateConsent then checks the origin against the named site.
func (s *Server) cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Add("Vary", "Origin")
		if origin := c.Request().Header.Get("Origin"); origin != "" && s.anySiteAllows(c.Request()) {
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
