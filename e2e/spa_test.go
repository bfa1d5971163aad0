package e2e

import (
	"fmt"
	"testing"

	"github.com/mixvoip/consentd/internal/wait"
)

// Elements added later, as single-page apps do: they are gated as the page's own
// are, before and after consent.

// insertJS appends an element built from html to <main> and reports success.
func insertJS(html string) string {
	return `(() => { const t = document.createElement('template'); t.innerHTML = ` + jsString(html) + `; document.querySelector('main').append(t.content); return true; })()`
}

// insertScriptJS appends a gated inline script: innerHTML would not create one that
// can run, so it is built as a page's framework would.
func insertScriptJS(id, partner, code string) string {
	p := ""
	if partner != "" {
		p = `s.setAttribute('data-partner', ` + jsString(partner) + `);`
	}
	return `(() => { const s = document.createElement('script'); s.type = 'text/plain'; s.id = ` + jsString(id) +
		`; s.setAttribute('data-category', 'advertising');` + p + ` s.text = ` + jsString(code) + `; document.querySelector('main').append(s); return true; })()`
}

// TestSPAInsertion: elements the page adds after load are gated too: before consent an
// embed gets a placeholder, after consent gated scripts and embeds run at once
// without a reload, and one naming a disabled partner never does.
func TestSPAInsertion(t *testing.T) {
	forSites(t, []string{"mixvoip.org"}, func(t *testing.T, env *Env, site string) {
		partner := env.EmbedPartner(site)
		embed := func(id, path string) string {
			return `<iframe id="` + id + `" title="video" width="320" height="180" data-category="advertising" data-partner="` + partner + `" data-src="` + env.EmbedURL(path) + `"></iframe>`
		}
		p := MustOpenPage(t, env, site)
		mark := env.Requests.Mark()
		p.MustNavigate()
		p.MustBannerVisible()

		MustEval[bool](t, p, insertJS(embed("spa-early", "/spa-early")))
		MustEval[bool](t, p, insertScriptJS("spa-early-script", "", `document.documentElement.setAttribute('data-spa-early', '1');`))
		wait.MustUntil(t, "the embed added before consent gets a placeholder", func() (bool, string) {
			st := mustEmbed(t, p, "spa-early")
			return st.Placeholder, fmt.Sprintf("%+v", st)
		})
		if st := mustEmbed(t, p, "spa-early"); st.Src != "" || embedRequested(env, mark, "/spa-early") {
			t.Errorf("the embed added before consent loaded: %+v", st)
		}
		if MustEval[bool](t, p, `document.documentElement.hasAttribute('data-spa-early')`) {
			t.Error("the gated script added before consent ran")
		}

		p.MustClick(`"Accept all"`, `layer1('accept-all')`)
		p.MustWaitJS("the gated script added before consent runs after Accept all", `document.documentElement.getAttribute('data-spa-early') === '1'`)
		wait.MustUntil(t, "the embed added before consent loads after Accept all", func() (bool, string) {
			st := mustEmbed(t, p, "spa-early")
			return st.Src == env.EmbedURL("/spa-early") && embedRequested(env, mark, "/spa-early"), fmt.Sprintf("%+v", st)
		})

		MustEval[bool](t, p, insertScriptJS("spa-disabled", env.DisabledPartner(site), `document.documentElement.setAttribute('data-spa-disabled', '1');`))
		MustEval[bool](t, p, insertScriptJS("spa-script", "", `document.documentElement.setAttribute('data-spa-late', '1');`))
		MustEval[bool](t, p, insertJS(embed("spa-late", "/spa-late")))
		p.MustWaitJS("the gated script added after consent runs", `document.documentElement.getAttribute('data-spa-late') === '1'`)
		wait.MustUntil(t, "the embed added after consent loads", func() (bool, string) {
			st := mustEmbed(t, p, "spa-late")
			return st.Src == env.EmbedURL("/spa-late") && !st.Placeholder && embedRequested(env, mark, "/spa-late"), fmt.Sprintf("%+v", st)
		})
		if MustEval[bool](t, p, `document.documentElement.hasAttribute('data-spa-disabled')`) {
			t.Errorf("a script added later that names the disabled partner %s ran", env.DisabledPartner(site))
		}
		if MustEval[int](t, p, `document.querySelectorAll('[data-spa-late]').length`) != 1 {
			t.Error("the gated script added after consent ran more than once")
		}
	})
}
