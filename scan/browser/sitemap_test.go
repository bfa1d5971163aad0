package browser

import (
	"strings"
	"testing"
)

// FuzzSitemapPages: a sitemap is whatever a site serves; reading it never panics,
// and gives only what is inside <loc> elements, trimmed.
func FuzzSitemapPages(f *testing.F) {
	f.Add(`<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc> https://example.com/a </loc></url></urlset>`)
	f.Add(`<sitemapindex><sitemap><loc>https://example.com/s.xml</loc></sitemap></sitemapindex>`)
	f.Add(`<urlset><url><loc>` + strings.Repeat("a", 1000) + `</loc></url><url></url></urlset>`)
	f.Add(`<!DOCTYPE x [<!ENTITY a "b">]><urlset><url><loc>&a;</loc></url></urlset>`)
	f.Fuzz(func(t *testing.T, text string) {
		for _, p := range sitemapPages(text) {
			if p != strings.TrimSpace(p) {
				t.Errorf("page %q not trimmed", p)
			}
		}
	})
}

func TestSitemapPages(t *testing.T) {
	got := sitemapPages(`<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>https://example.com/a</loc></url><url><loc>
  https://example.com/b
</loc></url></urlset>`)
	if strings.Join(got, " ") != "https://example.com/a https://example.com/b" {
		t.Errorf("pages %q", got)
	}
	if got := sitemapPages(`<sitemapindex><sitemap><loc>https://example.com/s.xml</loc></sitemap></sitemapindex>`); len(got) != 0 {
		t.Errorf("a sitemap index gives %q, want no page", got)
	}
}
