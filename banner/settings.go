package banner

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mixvoip/consentd"
)

// settings are what the bundle carries for one site, under one-letter keys because
// they ship to every page view. The TypeScript interfaces of src/settings.ts document
// the same shape, and TestTypeScriptSettings holds them to it.
type settings struct {
	Site        string             `json:"s"`
	Fingerprint string             `json:"f"`
	Coverage    string             `json:"h"`
	Languages   []string           `json:"l"`
	Texts       *language          `json:"t"` // one language's: each script ships one
	PolicyURL   string             `json:"p"`
	PolicyVer   string             `json:"v"`
	Cookie      cookieSettings     `json:"k"`
	Categories  []categorySettings `json:"g"`
	Partners    []partnerSettings  `json:"q"`
	Floating    bool               `json:"b,omitempty"`
	Theme       []string           `json:"m,omitempty"`
}

type cookieSettings struct {
	Name        string  `json:"n"`
	Domain      string  `json:"d,omitempty"`
	ConsentDays float64 `json:"c"`
	RefusalDays float64 `json:"r"`
}

type categorySettings struct {
	ID       string `json:"i"`
	Required bool   `json:"r,omitempty"`
}

// language is what the banner shows in one language. The first layer's script
// carries the part of it that the first layer, the placeholders and the floating
// button need; the second layer's carries all of it.
type language struct {
	Lang string `json:"l"`
	// Fingerprint is that of the settings the texts belong to: a first-layer script cached
	// from before a change of sites.yaml takes no newer second layer.
	Fingerprint string            `json:"f,omitempty"`
	UI          map[string]string `json:"t"`
	Categories  [][]string        `json:"g"` // per category: name, and in the second layer its description
	Controller  string            `json:"c,omitempty"`
	Partners    []disclosure      `json:"q,omitempty"` // second layer: in the order of settings.Partners
}

// disclosure is what the second layer tells about one partner, in one language: what
// its material fingerprint covers (materialPartner).
type disclosure struct {
	Purpose    string      `json:"u"`
	Provider   string      `json:"o"`
	DataShared []string    `json:"d"` // keys of the UI texts
	Cookies    [][2]string `json:"k"` // name, lifetime as told
	LeavesEEA  bool        `json:"x,omitempty"`
	Transfer   string      `json:"t,omitempty"`
	PrivacyURL string      `json:"y"`
}

// disclosure returns what m tells in the ith of its languages.
func (m *materialPartner) disclosure(i int) disclosure {
	d := disclosure{
		Purpose: m.Purpose[i], Provider: m.Provider, DataShared: m.DataShared, Cookies: [][2]string{},
		LeavesEEA: m.LeavesEEA, Transfer: m.Transfer, PrivacyURL: m.PrivacyURL,
	}
	for _, k := range m.Cookies {
		d.Cookies = append(d.Cookies, [2]string{k.Name, k.Lifetime})
	}
	return d
}

// firstLayerTexts are the UI texts the first layer's script carries: those of the
// first layer, of the placeholders and of the floating button.
var firstLayerTexts = []string{
	"title", "body", "privacy", "partners", "acceptAll", "rejectAll", "customize", "settings",
	"embed", "unavailable", "allowOnce", "allowAlways",
}

// firstLayer returns the part of l that the first layer's script carries.
func (l *language) firstLayer() *language {
	part := &language{Lang: l.Lang, UI: map[string]string{}} // its fingerprint is the settings'
	for _, k := range firstLayerTexts {
		part.UI[k] = l.UI[k]
	}
	for _, c := range l.Categories {
		part.Categories = append(part.Categories, c[:1])
	}
	return part
}

type partnerSettings struct {
	ID          string        `json:"i"`
	Name        string        `json:"n"`
	Category    string        `json:"g"`
	Cookies     []string      `json:"k"` // names, to remove on withdrawal
	Storage     []string      `json:"s,omitempty"`
	ConsentMode bool          `json:"m,omitempty"`
	Tags        []tagSettings `json:"j"`
}

type tagSettings struct {
	Src    string `json:"s,omitempty"`
	Inline string `json:"i,omitempty"`
}

// themeProperties are the custom properties of src/banner.css that a site's theme
// sets, by theme name (consent.ThemeNames).
var themeProperties = map[string]string{
	"background": "bg", "text": "fg", "accent": "ac", "accent-text": "on", "border": "bd", "focus": "fc",
}

// themeDefine is what the bundle's __THEME__ stands for: the properties that the
// colours of settings.Theme go to, in their order, that of consent.ThemeNames.
var themeDefine = func() string {
	props := make([]string, len(consent.ThemeNames))
	for i, name := range consent.ThemeNames {
		props[i] = themeProperties[name]
	}
	data, _ := json.Marshal(props) // strings only
	return string(data)
}()

// Default cookie settings, for a site that leaves them out.
const (
	defaultCookieName      = "consent"
	defaultConsentLifetime = 182 * 24 * time.Hour // about six months
)

// newSettings returns the settings of site's banner, without texts, and the texts in
// each of its languages, the default first.
func newSettings(site *consent.Site, opts Options) (*settings, []language, error) {
	langs, err := languages(site)
	if err != nil {
		return nil, nil, err
	}
	ui, err := siteTexts(site, langs)
	if err != nil {
		return nil, nil, err
	}
	shown := newMaterial(site, langs, ui, enabledOnly)
	c := &settings{
		Site:        site.Key,
		Fingerprint: shown.fingerprint(),
		Coverage:    newMaterial(site, langs, ui, allPartners).fingerprint(),
		Languages:   langs,
		PolicyURL:   site.Policy.URL,
		PolicyVer:   site.Policy.Version,
		Cookie:      cookie(site.Cookie),
		Categories:  []categorySettings{},
		Partners:    []partnerSettings{},
		Floating:    site.FloatingButton,
	}
	if len(site.Theme) > 0 {
		// the whole theme, defaults filled in: what package config checked for contrast is
		// what shows, in light and dark mode alike
		for _, name := range consent.ThemeNames {
			colour := site.Theme[name]
			if colour == "" {
				colour = consent.DefaultTheme[name]
			}
			c.Theme = append(c.Theme, colour)
		}
	}
	texts := make([]language, len(langs))
	for i, l := range langs {
		t := make(map[string]string, len(ui[l]))
		for k, v := range ui[l] {
			// the controller's name is compiled into the texts: data, not code
			t[k] = strings.ReplaceAll(v, "{controller}", site.Controller.Name)
		}
		texts[i] = language{
			Lang: l, Fingerprint: c.Fingerprint, UI: t, Categories: [][]string{}, Partners: []disclosure{},
			Controller: strings.Join(nonEmpty(site.Controller.Name, site.Controller.Address, site.Controller.Email), ", "),
		}
	}
	for _, cat := range shown.Categories {
		c.Categories = append(c.Categories, categorySettings{ID: cat.ID, Required: cat.Required})
		for i := range langs {
			texts[i].Categories = append(texts[i].Categories, []string{cat.Name[i], cat.Description[i]})
		}
	}
	for _, p := range site.Partners {
		// a disabled partner's tags and disclosures never ship
		if !p.Enabled {
			continue
		}
		ps := partnerSettings{
			ID: p.ID, Name: p.Name, Category: p.Category,
			Cookies: []string{}, Storage: p.Storage, ConsentMode: p.ConsentMode, Tags: []tagSettings{},
		}
		for _, k := range p.Cookies {
			ps.Cookies = append(ps.Cookies, k.Name)
		}
		for _, t := range p.Tags {
			src := t.Src
			if src != "" && opts.RewriteSrc != nil {
				src = opts.RewriteSrc(p.ID, src)
			}
			ps.Tags = append(ps.Tags, tagSettings{Src: src, Inline: t.Inline})
		}
		c.Partners = append(c.Partners, ps)
		m := told(&p, langs)
		for i := range langs {
			texts[i].Partners = append(texts[i].Partners, m.disclosure(i))
		}
	}
	return c, texts, nil
}

// withoutTags returns a copy of c without the partners' tags: the second layer loads
// none.
func (c *settings) withoutTags() *settings {
	out := *c
	out.Partners = slices.Clone(c.Partners)
	for i := range out.Partners {
		out.Partners[i].Tags = []tagSettings{}
	}
	return &out
}

// languages returns the site's languages as primary subtags ("de-LU" → "de"), the
// default first, each one the banner has texts for.
func languages(site *consent.Site) ([]string, error) {
	ui, err := texts()
	if err != nil {
		return nil, err
	}
	var langs []string
	seen := map[string]bool{}
	for _, l := range site.Languages {
		l = strings.ToLower(strings.SplitN(l, "-", 2)[0])
		if seen[l] {
			continue
		}
		if ui[l] == nil {
			return nil, fmt.Errorf("banner: %s: no banner texts for language %q", site.Key, l)
		}
		seen[l] = true
		langs = append(langs, l)
	}
	if len(langs) == 0 {
		return nil, fmt.Errorf("banner: %s: no languages", site.Key)
	}
	return langs, nil
}

// localize returns t in each of langs, falling back to the default language, then to
// any language, so that the banner never shows an empty text.
func localize(t consent.Text, langs []string) []string {
	out := make([]string, len(langs))
	for i, l := range langs {
		out[i] = text(t, l, langs[0])
	}
	return out
}

func text(t consent.Text, lang, def string) string {
	if s := t[lang]; s != "" {
		return s
	}
	if s := t[def]; s != "" {
		return s
	}
	for _, s := range t { // a single-language text
		return s
	}
	return ""
}

func cookie(s consent.CookieSettings) cookieSettings {
	c := cookieSettings{Name: s.Name, Domain: strings.TrimPrefix(s.Domain, ".")}
	if c.Name == "" {
		c.Name = defaultCookieName
	}
	consentLife := s.ConsentLifetime
	if consentLife <= 0 {
		consentLife = defaultConsentLifetime
	}
	refusalLife := s.RefusalLifetime
	if refusalLife <= 0 {
		refusalLife = consentLife
	}
	c.ConsentDays = days(min(consentLife, consent.MaxConsentLifetime))
	c.RefusalDays = days(min(refusalLife, consent.MaxConsentLifetime))
	return c
}

// days converts d to days, rounded to the second the cookie's Max-Age counts in.
func days(d time.Duration) float64 {
	return math.Round(d.Seconds()) / 86400
}

func nonEmpty(s ...string) []string {
	return slices.DeleteFunc(s, func(s string) bool { return s == "" })
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// siteTexts returns the UI texts of site in each of langs: those of banner/i18n with
// the site's overrides from sites.yaml applied.
func siteTexts(site *consent.Site, langs []string) (map[string]map[string]string, error) {
	ui, err := texts()
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]string, len(langs))
	for _, l := range langs {
		t := maps.Clone(ui[l])
		for k, v := range site.Texts[l] {
			if _, ok := t[k]; !ok {
				return nil, fmt.Errorf("banner: %s: unknown text key %q", site.Key, k)
			}
			t[k] = v
		}
		out[l] = t
	}
	return out, nil
}

// texts returns the UI texts of banner/i18n by language, parsed once.
var texts = sync.OnceValues(func() (map[string]map[string]string, error) {
	files, err := fs.Glob(sources, "i18n/*.json")
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for _, f := range files {
		data, err := fs.ReadFile(sources, f)
		if err != nil {
			return nil, err
		}
		var t map[string]string
		if err := json.Unmarshal(data, &t); err != nil {
			return nil, fmt.Errorf("banner: %s: %w", f, err)
		}
		out[strings.TrimSuffix(path.Base(f), ".json")] = t
	}
	return out, nil
})
