package server

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mixvoip/consentd/scan"
)

// reportCSP lets a scan report, which is one self-contained page, use its own
// inline style and nothing else.
const reportCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// scansData is what the page of site scans shows: the reports kept, newest first,
// each with the sites the token may see.
type scansData struct {
	Enabled bool // whether consentd was given a directory of reports
	Dir     string
	Reports []scan.Summary
}

func (s *Server) handleScansPage(c echo.Context) error {
	d := &scansData{Enabled: s.opts.Scans != nil}
	if d.Enabled {
		d.Dir = s.opts.Scans.Path()
		all, err := s.opts.Scans.List()
		if err != nil {
			return err
		}
		token := dpoToken(c)
		for _, r := range all {
			if r.Error != "" && len(token.Sites) == 0 {
				d.Reports = append(d.Reports, r)
				continue
			}
			var sites []scan.SiteSummary
			for _, site := range r.Sites {
				if token.MaySee(site.Site) {
					sites = append(sites, site)
				}
			}
			if len(sites) > 0 {
				r.Sites = sites
				d.Reports = append(d.Reports, r)
			}
		}
	}
	return s.render(c, http.StatusOK, "scans", &consolePage{Title: "Site scans", Nav: "scans", Data: d})
}

// handleScanReport serves a report, as HTML or with ".json" as JSON, with only the
// sites the token may see.
func (s *Server) handleScanReport(c echo.Context) error {
	name, asJSON := strings.CutSuffix(c.Param("report"), ".json")
	if s.opts.Scans == nil {
		return echo.NewHTTPError(http.StatusNotFound, "no scan reports: consentd serves none without --scan-dir")
	}
	r, err := s.opts.Scans.Load(name)
	if errors.Is(err, scan.ErrNoReport) {
		return echo.NewHTTPError(http.StatusNotFound, "no such scan report")
	}
	if err != nil {
		return err
	}
	token := dpoToken(c)
	r = r.Only(slices.DeleteFunc(r.SiteKeys(), func(site string) bool { return !token.MaySee(site) }))
	if len(r.Sites) == 0 {
		// the same answer as for a report that does not exist: a limited token
		// learns nothing of the others' scans
		return echo.NewHTTPError(http.StatusNotFound, "no such scan report")
	}
	var buf bytes.Buffer
	h := c.Response().Header()
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if asJSON {
		if err := scan.WriteJSON(&buf, r); err != nil {
			return err
		}
		h.Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, buf.Bytes())
	}
	if err := scan.WriteHTML(&buf, r); err != nil {
		return err
	}
	h.Set("Content-Security-Policy", reportCSP)
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}
