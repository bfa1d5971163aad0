package server

import (
	"net/http"
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
	st := s.site(key)
	if !ok || st == nil {
		return consent.Errorf(consent.ENotFound, "unknown site %q", key)
	}
	return serveBundle(c, st.bundle)
}

// serveBundle sends the precompressed variant the client accepts, or 304 when its
// copy is current. Each encoding has its own strong ETag, as RFC 9110 asks.
func serveBundle(c echo.Context, b *banner.Bundle) error {
	req, h := c.Request(), c.Response().Header()
	body, encoding, suffix := b.JS, "", ""
	switch preferred(req.Header.Get("Accept-Encoding")) {
	case "br":
		body, encoding, suffix = b.Brotli, "br", "-br"
	case "gzip":
		body, encoding, suffix = b.Gzip, "gzip", "-gz"
	}
	etag := strings.TrimSuffix(b.ETag, `"`) + suffix + `"`
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", bannerCacheControl)
	h.Set("Vary", "Accept-Encoding")
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

// preferred picks br, gzip or "" (identity) from an Accept-Encoding header,
// honouring q-values; on a tie brotli wins, being smaller.
func preferred(header string) string {
	best, bestQ := "", 0.0
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if (name == "br" || name == "gzip") && q > 0 && (q > bestQ || q == bestQ && name == "br") {
			best, bestQ = name, q
		}
	}
	return best
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
