package banner

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/mixvoip/consentd"
)

// config is what the bundle carries for one site, under one-letter keys because it
// ships to every page view. The TypeScript interface Config in src/config.ts documents
// the same shape; the two must change together.
type config struct {
	Site        string              `json:"s"`
	Fingerprint string              `json:"f"`
	Coverage    string              `json:"h"`
	Languages   []string            `json:"l"`
	PolicyURL   string              `json:"p"`
	PolicyVer   string              `json:"v"`
	Controller  string              `json:"c"`
	Address     string              `json:"a,omitempty"`
	Email       string              `json:"e,omitempty"`
	Texts       []map[string]string `json:"t"`
	Cookie      cookieConfig        `json:"k"`
	Categories  []categoryConfig    `json:"g"`
	Partners    []partnerConfig     `json:"q"`
	Floating    bool                `json:"b,omitempty"`
	Theme       []string            `json:"m,omitempty"`
}

type cookieConfig struct {
	Name        string  `json:"n"`
	Domain      string  `json:"d,omitempty"`
	ConsentDays float64 `json:"c"`
	RefusalDays float64 `json:"r"`
}

type categoryConfig struct {
	ID          string   `json:"i"`
	Required    bool     `json:"r,omitempty"`
	Name        []string `json:"n"`
	Description []string `json:"d"`
}

type partnerConfig struct {
	ID          string      `json:"i"`
	Name        string      `json:"n"`
	Provider    string      `json:"o"`
	Category    string      `json:"g"`
	Purpose     []string    `json:"u"`
	DataShared  []string    `json:"d"`
	Cookies     [][2]string `json:"k"`
	Storage     []string    `json:"s,omitempty"`
	LeavesEEA   bool        `json:"x,omitempty"`
	Transfer    string      `json:"t,omitempty"`
	PrivacyURL  string      `json:"y"`
	ConsentMode bool        `json:"m,omitempty"`
	Tags        []tagConfig `json:"j"`
}

type tagConfig struct {
	Src    string `json:"s,omitempty"`
	Inline string `json:"i,omitempty"`
}

// Default cookie settings, for a site that leaves them out.
const (
	defaultCookieName      = "consent"
	defaultConsentLifetime = 182 * 24 * time.Hour // about six months
)

func newConfig(site *consent.Site, opts Options) (*config, error) {
	langs, err := languages(site)
	if err != nil {
		return nil, err
	}
	ui, err := siteTexts(site, langs)
	if err != nil {
		return nil, err
	}
	c := &config{
		Site:        site.Key,
		Fingerprint: fingerprint(site, langs, ui, enabledOnly),
		Coverage:    fingerprint(site, langs, ui, allPartners),
		Languages:   langs,
		PolicyURL:   site.Policy.URL,
		PolicyVer:   site.Policy.Version,
		Controller:  site.Controller.Name,
		Address:     site.Controller.Address,
		Email:       site.Controller.Email,
		Cookie:      cookie(site.Cookie),
		Categories:  []categoryConfig{},
		Partners:    []partnerConfig{},
		Floating:    site.FloatingButton,
	}
	if len(site.Theme) > 0 {
		// the whole theme, defaults filled in: what config checked for contrast is
		// what shows, in light and dark mode alike
		for _, name := range consent.ThemeNames {
			colour := site.Theme[name]
			if colour == "" {
				colour = consent.DefaultTheme[name]
			}
			c.Theme = append(c.Theme, colour)
		}
	}
	for _, l := range langs {
		t := make(map[string]string, len(ui[l]))
		for k, v := range ui[l] {
			// the controller's name is compiled into the texts: data, not code
			t[k] = strings.ReplaceAll(v, "{controller}", site.Controller.Name)
		}
		c.Texts = append(c.Texts, t)
	}
	for _, cat := range site.Categories {
		c.Categories = append(c.Categories, categoryConfig{
			ID: cat.ID, Required: cat.Required,
			Name: localize(cat.Name, langs), Description: localize(cat.Description, langs),
		})
	}
	for _, p := range site.Partners {
		// a disabled partner's tags and disclosures never ship
		if !p.Enabled {
			continue
		}
		pc := partnerConfig{
			ID: p.ID, Name: p.Name, Provider: p.Provider, Category: p.Category,
			Purpose: localize(p.Purpose, langs), DataShared: nonNil(p.DataShared),
			Cookies: [][2]string{}, Storage: p.Storage, LeavesEEA: p.LeavesEEA, Transfer: p.Transfer,
			PrivacyURL: p.PrivacyURL, ConsentMode: p.ConsentMode, Tags: []tagConfig{},
		}
		for _, k := range p.Cookies {
			pc.Cookies = append(pc.Cookies, [2]string{k.Name, k.Lifetime})
		}
		for _, t := range p.Tags {
			src := t.Src
			if src != "" && opts.RewriteSrc != nil {
				src = opts.RewriteSrc(p.ID, src)
			}
			pc.Tags = append(pc.Tags, tagConfig{Src: src, Inline: t.Inline})
		}
		c.Partners = append(c.Partners, pc)
	}
	return c, nil
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

func cookie(s consent.CookieSettings) cookieConfig {
	c := cookieConfig{Name: s.Name, Domain: strings.TrimPrefix(s.Domain, ".")}
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
