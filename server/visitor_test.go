package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
)

// MustVisitorTexts reads the visitor page's texts in lang, as shipped.
func MustVisitorTexts(tb testing.TB, lang string) map[string]string {
	tb.Helper()
	data, err := os.ReadFile("visitor/i18n/" + lang + ".json")
	if err != nil {
		tb.Fatal(err)
	}
	var texts map[string]string
	if err := json.Unmarshal(data, &texts); err != nil {
		tb.Fatal(err)
	}
	return texts
}

// TestVisitorLanguage: the lang parameter names the page's language if the site has
// it, else the visitor's browser does, by weight, else the site's default does.
func TestVisitorLanguage(t *testing.T) {
	f := MustFixture(t, false)
	tests := []struct {
		name, site, query, acceptLanguage, want string
	}{
		{"lang of the site", "mixvoip.com", "fr", "de", "fr"},
		{"lang in another case", "mixvoip.com", "FR", "", "fr"},
		{"lang with a region", "mixvoip.com", "de-LU", "", "de"},
		{"lang not of the site: the browser's", "mixvoip.com", "nl", "de-DE,de;q=0.9", "de"},
		{"lang not a language: the browser's", "mixvoip.com", "<script>", "fr", "fr"},
		{"no lang: the browser's first the site has", "mixvoip.org", "", "nl-BE, fr;q=0.8, en;q=0.7", "fr"},
		{"the browser's by weight, not by order", "mixvoip.com", "", "fr;q=0.5, de;q=0.9", "de"},
		{"same weight: the first named", "voxbi.com", "", "en, de", "en"},
		{"a language refused with q=0", "mixvoip.com", "", "de;q=0, fr;q=0.1", "fr"},
		{"nothing the site has: its default", "voxbi.team", "", "es, it;q=0.8", "nl"},
		{"any language: the default", "voxbi.com", "", "*", "fr"},
		{"neither: the default", "mixvoip.org", "", "", "de"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/v1/visitor/" + tt.site
			if tt.query != "" {
				path += "?lang=" + tt.query
			}
			rec := f.do(t, http.MethodGet, path, "", map[string]string{"Accept-Language": tt.acceptLanguage})
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, body %s", rec.Code, rec.Body)
			}
			page := rec.Body.String()
			if !strings.Contains(page, `<html lang="`+tt.want+`">`) {
				t.Errorf("page is not in %s: %.120s", tt.want, page)
			}
			if title := MustVisitorTexts(t, tt.want)["title"]; !strings.Contains(page, "<h1>"+title+"</h1>") {
				t.Errorf("page lacks the %s title %q", tt.want, title)
			}
		})
	}
}

// TestVisitorPage: the page of every site in every language carries the site's
// names, its controller to contact and the script, under headers for a page that
// holds no personal data and trusts nothing but itself.
func TestVisitorPage(t *testing.T) {
	f := MustFixture(t, false)
	scriptRe := regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	styleRe := regexp.MustCompile(`(?s)<style>(.*?)</style>`)
	for _, key := range f.cfg.SiteKeys() {
		site := f.cfg.Sites[key]
		for _, lang := range site.Languages {
			t.Run(key+"/"+lang, func(t *testing.T) {
				rec := f.do(t, http.MethodGet, "/v1/visitor/"+key+"?lang="+lang, "", nil)
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d, body %s", rec.Code, rec.Body)
				}
				h, page := rec.Header(), rec.Body.String()
				for name, want := range map[string]string{
					"Content-Type":           "text/html; charset=utf-8",
					"Cache-Control":          "public, max-age=300",
					"Vary":                   "Accept-Language",
					"Referrer-Policy":        "no-referrer",
					"X-Content-Type-Options": "nosniff",
				} {
					if got := h.Get(name); got != want {
						t.Errorf("%s = %q, want %q", name, got, want)
					}
				}
				csp := h.Get("Content-Security-Policy")
				directives := map[string]string{}
				for _, d := range strings.Split(csp, ";") {
					name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
					directives[name] = value
				}
				scripts, styles := scriptRe.FindAllStringSubmatch(page, -1), styleRe.FindAllStringSubmatch(page, -1)
				if len(scripts) != 1 || len(styles) != 1 {
					t.Fatalf("%d inline scripts and %d stylesheets, want one each", len(scripts), len(styles))
				}
				for name, want := range map[string]string{
					"default-src":               "'none'",
					"script-src":                hashSource(scripts[0][1]),
					"style-src":                 hashSource(styles[0][1]),
					"connect-src":               "'self'",
					"frame-ancestors":           "'none'",
					"base-uri":                  "'none'",
					"form-action":               "'none'",
					"require-trusted-types-for": "'script'",
				} {
					if got := directives[name]; got != want {
						t.Errorf("Content-Security-Policy %s is %q, want %q (the whole policy: %s)", name, got, want, csp)
					}
				}
				texts := MustVisitorTexts(t, lang)
				wants := []string{
					`<html lang="` + lang + `">`,
					"<h1>" + texts["title"] + "</h1>",
					`<p class="site">` + key + `</p>`,
					site.Controller.Address,
					`<a href="mailto:` + site.Controller.Email + `">`,
					`<a href="` + site.Policy.URL + `">`,
					`"lang":"` + lang + `"`,
				}
				for _, c := range site.Categories {
					wants = append(wants, `["`+c.ID+`","`+c.Name[lang]+`"]`)
				}
				for _, p := range site.Partners {
					wants = append(wants, `["`+p.ID+`","`+p.Name+`"]`)
				}
				for _, want := range wants {
					if !strings.Contains(page, want) {
						t.Errorf("page lacks %s", want)
					}
				}
				if strings.Contains(page, " style=") || regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
					t.Error("page has a style attribute or an event handler attribute, which its Content-Security-Policy refuses")
				}

				etag := h.Get("ETag")
				again := f.do(t, http.MethodGet, "/v1/visitor/"+key+"?lang="+lang, "", map[string]string{"If-None-Match": etag})
				if etag == "" || again.Code != http.StatusNotModified || again.Body.Len() != 0 {
					t.Errorf("If-None-Match %s: status %d with %d bytes, want 304 without a body", etag, again.Code, again.Body.Len())
				}
			})
		}
	}

	for _, method := range []string{http.MethodGet, http.MethodHead} {
		rec := f.do(t, method, "/v1/visitor/example.org?lang=en", "", nil)
		if rec.Code != http.StatusNotFound {
			t.Fatalf("%s of an unknown site: %d, want 404", method, rec.Code)
		}
		if method == http.MethodGet {
			if code, msg := MustErrorBody(t, rec); code != consent.ENotFound || !strings.Contains(msg, "example.org") {
				t.Errorf("unknown site: %s %q", code, msg)
			}
		}
	}
}

func hashSource(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// TestVisitorPageEscapesSiteTexts: what sites.yaml says goes into the page as text,
// whatever it holds.
func TestVisitorPageEscapesSiteTexts(t *testing.T) {
	base := MustFixture(t, false)
	const evil = `<img src=x onerror=alert(1)>"'</script>`
	site := *base.cfg.Sites[testSite]
	site.Controller.Name = evil
	site.Controller.Address = evil
	site.Categories = append([]consent.Category{}, site.Categories...)
	site.Categories[1].Name = consent.Text{"en": evil, "fr": evil, "de": evil}
	f, _, _ := MustServerOn(t, MustFreshStore(t), &config.Config{Sites: map[string]*consent.Site{testSite: &site}})
	rec := f.do(t, http.MethodGet, "/v1/visitor/"+testSite+"?lang=en", "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	page := rec.Body.String()
	if strings.Contains(page, "<img") || strings.Contains(page, `"'</script>`) {
		t.Errorf("a text of sites.yaml went into the page as markup:\n%s", page)
	}
	if !strings.Contains(page, "&lt;img src=x onerror=alert(1)&gt;") || !strings.Contains(page, `\u003cimg src=x onerror=alert(1)\u003e`) {
		t.Errorf("the controller's name or the category's is missing from the page, escaped:\n%s", page)
	}
}
