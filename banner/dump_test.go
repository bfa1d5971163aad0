package banner_test

import (
	"os"
	"testing"

	"github.com/mixvoip/consentd/banner"
)

func TestDump(t *testing.T) {
	site := MustSite(t)
	site.Cookie.Domain = "mixvoip.test"
	b := MustBuild(t, site, banner.Options{RewriteSrc: func(id, src string) string { return "/fake/" + id + ".js" }})
	os.MkdirAll("/tmp/bt/v1/banner", 0o755)
	os.WriteFile("/tmp/bt/v1/banner/mixvoip.com.js", b.JS, 0o644)
}
