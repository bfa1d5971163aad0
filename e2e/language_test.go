package e2e

import (
	"encoding/json"
	"testing"
)

// Languages: which language the banner speaks, and what a page in another language
// than the browser's costs.

// TestPageInAnotherLanguage: a page whose language is not the browser's gets the
// first layer from the script in the browser's language and the page's texts with
// the second layer's script, before anything shows: two requests, the banner in the
// page's language, and the preferences open without a third. On a repeat view the
// page's texts are loaded only for the floating "Cookie settings" button.
func TestPageInAnotherLanguage(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		st := env.Config.Sites[site]
		lang := st.Languages[1] // the browser speaks Languages[0]
		p := MustOpenPage(t, env, site)
		mark := env.Requests.Mark()
		p.MustNavigateLang(lang)
		p.MustBannerVisible()
		script, second := "GET /v1/banner/"+site+".js", "GET /v1/banner/"+site+"/"+lang+".js"
		if got := env.Requests.Backend(mark); !equalLists(got, []string{script, second}) {
			t.Errorf("requests to %s on first view = %q, want %q", backendHost, got, []string{script, second})
		}
		texts := MustBannerTexts(t, lang)
		if got := MustEval[string](t, p, `layer1('reject-all').textContent`); got != texts["rejectAll"] {
			t.Errorf("reject button says %q, want %q (%s)", got, texts["rejectAll"], lang)
		}
		mark = env.Requests.Mark()
		p.MustClick(`"Customize"`, `layer1('customize')`)
		p.MustDialogOpen()
		if got := env.Requests.Backend(mark); len(got) != 0 {
			t.Errorf("opening the preferences requested %q, want nothing: the second layer is there", got)
		}
		p.MustClick(`"Reject all" in the preferences`, `inDialog('[data-action="reject-all"]')`)
		p.MustBannerHidden()
		p.MustCookie(nil)

		p.MustNavigateLang(lang)
		p.MustReady()
		if st.FloatingButton {
			p.MustWaitJS("the floating button shows", `!!root() && !!root().querySelector('.f')`)
		}
		// from the browser's cache or not: what the page loaded
		loaded := MustEval[bool](t, p, `performance.getEntriesByType('resource').some((e) => e.name.includes('/v1/banner/`+site+`/'))`)
		if loaded != st.FloatingButton {
			t.Errorf("a repeat view loaded the second layer: %v, want %v (only for the floating button's text)", loaded, st.FloatingButton)
		}
	})
}

// TestLanguageChoice: the page's <html lang> wins (matched on its primary subtag),
// then the browser's languages, then the site's default language.
func TestLanguageChoice(t *testing.T) {
	const site = "voxbi.com" // fr (default), nl, de, en
	tests := []struct {
		name, htmlLang string
		browser        []string
		want           string
	}{
		{"page language with a region", "nl-BE", []string{"en-US"}, "nl"},
		{"browser language when the page's is not the site's", "ja", []string{"it", "de-DE", "en"}, "de"},
		{"site default when neither is", "ja", []string{"ja", "it"}, "fr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := MustEnv(t, site)
			p := MustOpenPage(t, env, site)
			langs, _ := json.Marshal(tt.browser)
			p.MustInitScript(`Object.defineProperty(Navigator.prototype, 'languages', { get: () => ` + string(langs) + ` });`)
			p.MustNavigateLang(tt.htmlLang)
			p.MustBannerVisible()
			got := MustEval[string](t, p, `(() => { const el = layer1('accept-all').closest('[lang]'); return el ? el.getAttribute('lang') : document.querySelector('consent-banner').getAttribute('lang'); })()`)
			if got != tt.want {
				t.Errorf("banner language = %q, want %q", got, tt.want)
			}
			texts := MustBannerTexts(t, tt.want)
			if label := MustEval[string](t, p, `layer1('accept-all').textContent`); label != texts["acceptAll"] {
				t.Errorf("accept button says %q, want %q", label, texts["acceptAll"])
			}
		})
	}
}
