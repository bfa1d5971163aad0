package server

import (
	"embed"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
)

//go:embed demo/page.html
var demoFiles embed.FS

var demoPage = template.Must(template.ParseFS(demoFiles, "demo/page.html"))

// demoPartnerURL points a partner's script tags at this server's fake partner
// endpoint, so that the demo shows in the network panel what loads when, without
// calling the real ad networks.
func demoPartnerURL(partnerID, _ string) string { return "/demo/partner/" + partnerID + ".js" }

func (s *Server) handleDemoPage(c echo.Context) error {
	st, err := s.siteParam(c)
	if err != nil {
		return err
	}
	var enabled []consent.Partner
	for _, p := range st.Partners {
		if p.Enabled {
			enabled = append(enabled, p)
		}
	}
	// ?lang= shows the page, and so the banner, in another of the site's languages
	lang := st.Languages[0]
	if l := c.QueryParam("lang"); slices.Contains(st.Languages, l) {
		lang = l
	}
	c.Response().Header().Set("Content-Type", "text/html; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	return demoPage.Execute(c.Response(), map[string]any{
		"Site":     st.Site,
		"Lang":     lang,
		"Name":     strings.ToUpper(st.Key[:1]) + st.Key[1:],
		"Partners": enabled,
	})
}

func (s *Server) handleDemoBanner(c echo.Context) error {
	st, err := s.siteParam(c)
	if err != nil {
		return err
	}
	return serveScript(c, st.demoBundle)
}

func (s *Server) handleDemoPrefs(c echo.Context) error {
	st, err := s.siteParam(c)
	if err != nil {
		return err
	}
	return servePrefs(c, st.demoBundle, st.demoEarlier, c.Param("file"))
}

var partnerFile = regexp.MustCompile(`^([a-z][a-z0-9-]*)\.js$`)

// handleDemoPartner stands in for a partner's tag: it marks the partner as loaded on
// the demo page.
func (s *Server) handleDemoPartner(c echo.Context) error {
	m := partnerFile.FindStringSubmatch(c.Param("file"))
	if m == nil {
		return consent.Errorf(consent.ENotFound, "no such demo partner")
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	js := `(function(){var id="` + m[1] + `";(window.demoPartners=window.demoPartners||[]).push(id);` +
		`var el=document.querySelector('[data-demo-partner="'+id+'"]');if(el){el.dataset.loaded="";el.lastChild.textContent="loaded"}})();`
	return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", []byte(js))
}
