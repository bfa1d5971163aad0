package e2e

import (
	"strconv"
	"strings"
	"testing"
)

// Partner tags: a partner's tags run in the order sites.yaml gives them.

// TestPartnerTagsRunInOrder: a partner's tags run strictly in the order of
// sites.yaml: the snippet after a partner's script runs only once that script has
// run, as Microsoft's UET snippet needs the UET its bat.js defines.
func TestPartnerTagsRunInOrder(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		enabled := EnabledPartners(env.Config, site)
		p := MustOpenPage(t, env, site)
		p.MustNavigate()
		p.MustBannerVisible()
		p.MustClick(`"Accept all"`, `layer1('accept-all')`)
		p.MustWaitJS("every partner's snippet after its script ran", `(window.tagOrder || []).length === `+strconv.Itoa(len(enabled)))
		order := MustEval[[]string](t, p, `window.tagOrder`)
		for _, o := range order {
			if !strings.HasSuffix(o, ":true") {
				t.Errorf("a partner's snippet ran before its script: %s (all: %q)", o, order)
			}
		}
	})
}
