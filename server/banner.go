package server

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
)

// bannerCacheControl lets browsers and CDNs keep the script for five minutes: a
// partner switched in sites.yaml reaches every visitor within that time, and a
// revalidation after it costs a 304.
const bannerCacheControl = "public, max-age=300, stale-while-revalidate=60"

func (s *Server) handleBanner(c echo.Context) error {
	key, ok := strings.CutSuffix(c.Param("file"), ".js")
	st := s.servedSite(key)
	if !ok || st == nil {
		return consent.Errorf(consent.ENotFound, "unknown site %q", key)
	}
	return serveScript(c, st.bundle)
}

// siteParam returns the site the request's :site names, or a not-found error.
func (s *Server) siteParam(c echo.Context) (*site, error) {
	st := s.servedSite(c.Param("site"))
	if st == nil {
		return nil, consent.Errorf(consent.ENotFound, "unknown site %q", c.Param("site"))
	}
	return st, nil
}

func (s *Server) handlePrefs(c echo.Context) error {
	st, err := s.siteParam(c)
	if err != nil {
		return err
	}
	return servePrefs(c, st.bundle, st.earlier, c.Param("file"))
}

// serveScript sends b's first-layer script with the texts of the language the
// browser prefers.
func serveScript(c echo.Context, b *banner.Bundle) error {
	i := language(b.Languages, c.Request().Header.Get("Accept-Language"))
	return serveAsset(c, &b.Scripts[i], "Accept-Encoding, Accept-Language")
}

// servePrefs sends the second-layer script of the language file names, "{lang}.js",
// of the bundle whose fingerprint the f query parameter names: current or earlier.
func servePrefs(c echo.Context, current *banner.Bundle, earlier []*banner.Bundle, file string) error {
	b := withFingerprint(current, earlier, c.QueryParam("f"))
	if b == nil {
		return consent.Errorf(consent.ENotFound, "site %q serves no banner of fingerprint %q any more", current.Site, c.QueryParam("f"))
	}
	lang, ok := strings.CutSuffix(file, ".js")
	i := b.Language(lang)
	if !ok || i < 0 {
		return consent.Errorf(consent.ENotFound, "site %q has no second layer %q", b.Site, file)
	}
	return serveAsset(c, &b.Prefs[i], "Accept-Encoding")
}

// serveAsset sends the precompressed variant the client accepts, or 304 when its
// copy is current. Each encoding has its own strong ETag, as RFC 9110 asks.
func serveAsset(c echo.Context, a *banner.Asset, vary string) error {
	req, h := c.Request(), c.Response().Header()
	body, encoding, suffix := a.Raw, "", ""
	switch preferred(req.Header.Get("Accept-Encoding")) {
	case "br":
		body, encoding, suffix = a.Brotli, "br", "-br"
	case "gzip":
		body, encoding, suffix = a.Gzip, "gzip", "-gz"
	}
	etag := strings.TrimSuffix(a.ETag, `"`) + suffix + `"`
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", bannerCacheControl)
	h.Set("Vary", vary)
	h.Set("ETag", etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if etagMatches(req.Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	if encoding != "" {
		h.Set("Content-Encoding", encoding)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", body)
}

// accepted is one entry of an Accept-Encoding or Accept-Language header.
type accepted struct {
	value string // lower case
	q     float64
}

// parseAccept returns the entries of an Accept-* header that are acceptable (q > 0),
// the most preferred first, ties in the header's order.
func parseAccept(header string) []accepted {
	var out []accepted
	for _, part := range strings.Split(header, ",") {
		value, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		a := accepted{value: strings.ToLower(strings.TrimSpace(value)), q: 1}
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				a.q = f
			}
		}
		if a.value != "" && a.q > 0 {
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b accepted) int { return cmp.Compare(b.q, a.q) })
	return out
}

// preferred picks br, gzip or "" (identity) from an Accept-Encoding header; on a tie
// brotli wins, being smaller.
func preferred(header string) string {
	best, bestQ := "", 0.0
	for _, a := range parseAccept(header) {
		if (a.value == "br" || a.value == "gzip") && (a.q > bestQ || a.q == bestQ && a.value == "br") {
			best, bestQ = a.value, a.q
		}
	}
	return best
}

// language returns the index in langs, primary subtags, of the one an Accept-Language
// header prefers, matched on the primary subtag ("de-LU" is "de"); 0, the default, if
// it names none of them. The banner picks the same way from navigator.languages.
func language(langs []string, header string) int {
	for _, a := range parseAccept(header) {
		primary, _, _ := strings.Cut(a.value, "-")
		if i := slices.Index(langs, primary); i >= 0 {
			return i
		}
	}
	return 0
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
