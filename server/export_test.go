package server

import (
	"github.com/labstack/echo/v4"

	"github.com/mixvoip/consentd/banner"
)

// Routes lists "METHOD /path" for every route s serves, so that the tests in package
// server_test can hold them against openapi.yaml without Echo leaking into the API.
func Routes(s *Server) []string {
	var out []string
	for _, r := range s.echo.Routes() {
		// Echo adds these catch-alls for the DPO group's middleware; they answer 401 or
		// 404 and are no operation of their own.
		if r.Method != echo.RouteNotFound {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// Bundles returns the bundles s serves for site, its banner's and its demo page's, so
// that tests can tell a bundle reused by Load from one built again.
func Bundles(s *Server, site string) (bundle, demo *banner.Bundle) {
	st := s.site(site)
	return st.bundle, st.demoBundle
}
