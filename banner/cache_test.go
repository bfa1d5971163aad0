package banner_test

import (
	"reflect"
	"testing"

	"github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
)

// MustCacheBuild builds site's bundle with c or fails the test.
func MustCacheBuild(tb testing.TB, c *banner.Cache, site *consent.Site, opts banner.Options) *banner.Bundle {
	tb.Helper()
	b, err := c.Build(site, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestCacheReuse: a Cache hands out its bundle for a site whose banner would come
// out the same, and builds a new one for a site whose banner would not, whichever
// part of the site or the options makes the difference.
func TestCacheReuse(t *testing.T) {
	t.Parallel()
	before := MustBuild(t, MustSite(t), banner.Options{})
	cache := banner.NewCache(before)
	demo := banner.Options{RewriteSrc: func(id, _ string) string { return "/demo/partner/" + id + ".js" }}

	tests := []struct {
		name   string
		edit   func(*consent.Site)
		opts   banner.Options
		reused bool
	}{
		{"unchanged", func(*consent.Site) {}, banner.Options{}, true},
		{"origins, not in the banner", func(s *consent.Site) { s.Origins = s.Origins[:1] }, banner.Options{}, true},
		{"retention, not in the banner", func(s *consent.Site) { s.RetentionPeriod /= 2 }, banner.Options{}, true},
		{"a partner switched off", func(s *consent.Site) { s.Partner("meta-pixel").Enabled = false }, banner.Options{}, false},
		{"a tag's URL, not material", func(s *consent.Site) { s.Partner("criteo").Tags[0].Src += "&b=1" }, banner.Options{}, false},
		{"a colour, not material", func(s *consent.Site) { s.Theme = map[string]string{"accent": "#004488"} }, banner.Options{}, false},
		{"the cookie's lifetime", func(s *consent.Site) { s.Cookie.RefusalLifetime /= 2 }, banner.Options{}, false},
		{"the controller's jurisdiction, material", func(s *consent.Site) { s.Controller.Jurisdiction = "DE" }, banner.Options{}, false},
		{"a text in a language not shown, only in the snapshot", func(s *consent.Site) { s.Categories[1].Name["it"] = "Pubblicità" }, banner.Options{}, false},
		{"tags rewritten", func(*consent.Site) {}, demo, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			site := MustSite(t)
			tt.edit(site)
			got := MustCacheBuild(t, cache, site, tt.opts)
			if reused := got == before; reused != tt.reused {
				t.Fatalf("bundle reused: %v, want %v", reused, tt.reused)
			}
			// What is served must be what Build would make, reused or not.
			fresh := MustBuild(t, site, tt.opts)
			if !reflect.DeepEqual(got.Scripts, fresh.Scripts) || !reflect.DeepEqual(got.Snapshot, fresh.Snapshot) {
				t.Errorf("cached bundle %s, snapshot %+v; Build makes %s, %+v", got.Scripts[0].ETag, got.Snapshot, fresh.Scripts[0].ETag, fresh.Snapshot)
			}
		})
	}
}

// TestCacheHoldsItsBundles: a Cache builds what it was not made with, and does not
// keep what it builds: it holds what is served, nothing more.
func TestCacheHoldsItsBundles(t *testing.T) {
	t.Parallel()
	site := MustSite(t)
	for _, c := range []*banner.Cache{banner.NewCache(), banner.NewCache(nil)} {
		first := MustCacheBuild(t, c, site, banner.Options{})
		if MustCacheBuild(t, c, site, banner.Options{}) == first {
			t.Error("a Cache kept a bundle it built")
		}
	}
}
