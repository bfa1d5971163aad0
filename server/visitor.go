package server

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/evanw/esbuild/pkg/api"
	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
)

// The visitor's own page, GET /v1/visitor/{site}: where the banner sends a visitor
// who wants to see what they decided. The consent id is in the address's fragment,
// which browsers send to no server and put in no Referer: the page itself is the same
// for everyone, holds no personal data, and may be cached; its script fetches the
// visitor's records from GET /v1/consents/{consent_id}.

//go:embed visitor/page.html visitor/page.ts visitor/page.css visitor/i18n/*.json
var visitorFiles embed.FS

// visitorCacheControl lets browsers and CDNs keep the page as long as the banner: it
// changes only with sites.yaml or a new consentd.
const visitorCacheControl = "public, max-age=300"

// visitorPage is one site's page in one language, ready to serve.
type visitorPage struct {
	html []byte
	etag string // strong, quoted, hash of html
	csp  string // visitorAssets.csp
}

// visitorAssets are what every visitor page shares.
type visitorAssets struct {
	page  *template.Template
	js    template.JS                  // page.ts compiled, minified
	css   template.CSS                 // page.css minified
	texts map[string]map[string]string // language → key → text
	// csp allows the page's one script and one stylesheet by their hashes, its fetch
	// of the records from its own origin, and nothing else: no other script, no
	// framing, no HTML written by script.
	csp string
}

// loadVisitorAssets builds the assets once: they come from the binary and never change.
var loadVisitorAssets = sync.OnceValues(buildVisitorAssets)

func buildVisitorAssets() (*visitorAssets, error) {
	ts, err := visitorFiles.ReadFile("visitor/page.ts")
	if err != nil {
		return nil, err
	}
	js, err := minify(ts, api.LoaderTS, "page.ts")
	if err != nil {
		return nil, fmt.Errorf("server: visitor page: %w", err)
	}
	css, err := visitorFiles.ReadFile("visitor/page.css")
	if err != nil {
		return nil, err
	}
	style, err := minify(css, api.LoaderCSS, "page.css")
	if err != nil {
		return nil, fmt.Errorf("server: visitor page: %w", err)
	}
	a := &visitorAssets{
		js:  template.JS(strings.TrimSpace(string(js))),
		css: template.CSS(strings.TrimSpace(string(style))),
	}
	// Both go into the page as they are, and their hashes must be of exactly that.
	if strings.Contains(strings.ToLower(string(a.js)), "</script") || strings.Contains(strings.ToLower(string(a.css)), "</style") {
		return nil, fmt.Errorf("server: visitor page: the script or stylesheet would end its element early")
	}
	a.csp = "default-src 'none'; script-src " + hashSource(string(a.js)) + "; style-src " + hashSource(string(a.css)) +
		"; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" +
		"; require-trusted-types-for 'script'; trusted-types 'none'"
	if a.texts, err = visitorTexts(); err != nil {
		return nil, err
	}
	a.page, err = template.New("page.html").Option("missingkey=error").ParseFS(visitorFiles, "visitor/page.html")
	return a, err
}

// minify compiles a page's script (TypeScript, to an IIFE for the browsers the
// banner supports) or stylesheet, minified.
func minify(src []byte, loader api.Loader, name string) ([]byte, error) {
	res := api.Transform(string(src), api.TransformOptions{
		Loader: loader, Format: api.FormatIIFE, Target: api.ES2017,
		MinifyWhitespace: true, MinifyIdentifiers: true, MinifySyntax: true, Sourcefile: name,
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, fmt.Errorf("esbuild: %s:\n%s", name, strings.Join(msgs, ""))
	}
	return res.Code, nil
}

func hashSource(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// visitorTexts reads the page's texts, one file per language a site may have, each
// with exactly the keys of en.json.
func visitorTexts() (map[string]map[string]string, error) {
	texts := map[string]map[string]string{}
	for _, lang := range consent.Languages {
		data, err := visitorFiles.ReadFile("visitor/i18n/" + lang + ".json")
		if err != nil {
			return nil, fmt.Errorf("server: visitor page: no texts in %s: %w", lang, err)
		}
		var t map[string]string
		if err := json.Unmarshal(data, &t); err != nil {
			return nil, fmt.Errorf("server: visitor page: texts in %s: %w", lang, err)
		}
		texts[lang] = t
	}
	want := slices.Sorted(maps.Keys(texts["en"]))
	for lang, t := range texts {
		if got := slices.Sorted(maps.Keys(t)); !slices.Equal(got, want) {
			return nil, fmt.Errorf("server: visitor page: the texts in %s have the keys %v, want those of en.json: %v", lang, got, want)
		}
	}
	return texts, nil
}

// visitorData is what the page's script reads from <script type="application/json">.
type visitorData struct {
	Lang       string            `json:"lang"`
	Texts      map[string]string `json:"texts"`
	Categories [][2]string       `json:"categories"` // id, name in Lang
	Partners   [][2]string       `json:"partners"`
}

// visitorPages renders the site's page in each of its languages.
func visitorPages(st *consent.Site) (map[string]*visitorPage, error) {
	a, err := loadVisitorAssets()
	if err != nil {
		return nil, err
	}
	pages := make(map[string]*visitorPage, len(st.Languages))
	for _, lang := range st.Languages {
		if a.texts[lang] == nil {
			return nil, fmt.Errorf("server: visitor page of %s: no texts in %q", st.Key, lang)
		}
		texts := make(map[string]string, len(a.texts[lang]))
		for k, v := range a.texts[lang] {
			// names, not markup: the template escapes them with the rest
			texts[k] = strings.NewReplacer("{site}", st.Key, "{controller}", st.Controller.Name).Replace(v)
		}
		data := visitorData{Lang: lang, Texts: texts, Categories: [][2]string{}, Partners: [][2]string{}}
		for _, c := range st.Categories {
			data.Categories = append(data.Categories, [2]string{c.ID, nameIn(c.Name, lang, c.ID)})
		}
		// Every partner of the catalog, enabled or not: a record may name one that was
		// enabled when the visitor decided.
		for _, p := range st.Partners {
			data.Partners = append(data.Partners, [2]string{p.ID, p.Name})
		}
		var buf bytes.Buffer
		err := a.page.Execute(&buf, map[string]any{
			"Lang": lang, "T": texts, "Site": st.Key, "Controller": st.Controller, "PolicyURL": st.Policy.URL,
			"CSS": a.css, "JS": a.js, "Data": data,
		})
		if err != nil {
			return nil, fmt.Errorf("server: visitor page of %s in %s: %w", st.Key, lang, err)
		}
		sum := sha256.Sum256(buf.Bytes())
		pages[lang] = &visitorPage{html: buf.Bytes(), etag: `"` + hex.EncodeToString(sum[:16]) + `"`, csp: a.csp}
	}
	return pages, nil
}

func nameIn(t consent.Text, lang, fallback string) string {
	if name := t[lang]; name != "" {
		return name
	}
	return fallback
}

// handleVisitor serves the site's visitor page in the visitor's language (see
// visitorLanguage), with headers for a page that a hostile client may frame, inject
// into or follow links from.
func (s *Server) handleVisitor(c echo.Context) error {
	st, err := s.siteParam(c)
	if err != nil {
		return err
	}
	req, h := c.Request(), c.Response().Header()
	page := st.visitor[visitorLanguage(st.Languages, c.QueryParam("lang"), req.Header.Get("Accept-Language"))]
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", visitorCacheControl)
	h.Set("Vary", "Accept-Language")
	h.Set("ETag", page.etag)
	h.Set("Content-Security-Policy", page.csp)
	// The consent id is never in the page's address but in its fragment; still, no
	// link followed from the page tells where it came from.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	if etagMatches(req.Header.Get("If-None-Match"), page.etag) {
		return c.NoContent(http.StatusNotModified)
	}
	h.Set("Content-Length", strconv.Itoa(len(page.html)))
	return c.Blob(http.StatusOK, "text/html; charset=utf-8", page.html)
}

// visitorLanguage picks the page's language among langs (the site's, its default
// first): the lang query parameter if it names one of them, else the one the
// Accept-Language header prefers, as for the banner. Both are matched on their
// primary subtag, in any case ("fr-BE" is fr).
func visitorLanguage(langs []string, query, acceptLanguage string) string {
	if l := primarySubtag(query); slices.Contains(langs, l) {
		return l
	}
	return langs[language(langs, acceptLanguage)]
}

func primarySubtag(tag string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(tag), "-")
	return strings.ToLower(l)
}
