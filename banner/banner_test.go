package banner_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
)

// MustSite returns a realistic site: four languages, a required and an advertising
// category, four enabled partners and one disabled.
func MustSite(tb testing.TB) *consent.Site {
	tb.Helper()
	ads := consent.Text{
		"de": "Werbung für unsere Angebote auf anderen Websites (Retargeting).",
		"en": "Ads for our offers on other websites (retargeting).",
		"fr": "Publicités pour nos offres sur d’autres sites (reciblage).",
		"nl": "Advertenties voor ons aanbod op andere websites (retargeting).",
	}
	return &consent.Site{
		Key:        "mixvoip.com",
		Controller: consent.Controller{Name: "Mixvoip S.A.", Address: "70, route d’Esch, L-1470 Luxembourg", Email: "privacy@mixvoip.com"},
		Policy:     consent.Policy{URL: "https://www.mixvoip.com/privacy", Version: "2025-01"},
		Origins:    []string{"https://www.mixvoip.com", "https://mixvoip.com"},
		Languages:  []string{"fr", "de", "en", "nl"},
		Cookie: consent.CookieSettings{Name: "consent", Domain: "mixvoip.com",
			ConsentLifetime: 182 * 24 * time.Hour, RefusalLifetime: 182 * 24 * time.Hour},
		Categories: []consent.Category{
			{ID: "technical", Required: true,
				Name: consent.Text{"de": "Technisch notwendig", "en": "Technically necessary", "fr": "Techniquement nécessaires", "nl": "Technisch noodzakelijk"},
				Description: consent.Text{
					"de": "Damit die Website funktioniert und Ihre Wahl gespeichert bleibt. Immer aktiv.",
					"en": "Needed for the website to work and to remember your choice. Always on.",
					"fr": "Nécessaires au fonctionnement du site et à la mémorisation de votre choix.",
					"nl": "Nodig om de website te laten werken en uw keuze te onthouden.",
				}},
			{ID: "advertising",
				Name: consent.Text{"de": "Werbung (Retargeting)", "en": "Advertising (retargeting)", "fr": "Publicité (reciblage)", "nl": "Advertenties (retargeting)"},
				Description: consent.Text{
					"de": "Partner zeigen Ihnen auf anderen Websites Werbung für unsere Angebote.",
					"en": "Partners show you ads for our offers on other websites.",
					"fr": "Des partenaires vous montrent nos offres sur d’autres sites.",
					"nl": "Partners tonen u advertenties voor ons aanbod op andere websites.",
				}},
		},
		Partners: []consent.Partner{
			{ID: "google-ads", Enabled: true, Name: "Google Ads", Provider: "Google Ireland Limited", Category: "advertising",
				Purpose: ads, DataShared: []string{"ip_address", "advertising_id"},
				Cookies:   []consent.Cookie{{Name: "_gcl_au", Lifetime: "90 days"}, {Name: "IDE", Lifetime: "13 months"}},
				LeavesEEA: true, Transfer: "EU-US Data Privacy Framework", PrivacyURL: "https://policies.google.com/privacy",
				ConsentMode: true,
				Tags: []consent.Tag{{Src: "https://www.googletagmanager.com/gtag/js?id=AW-123456789"},
					{Inline: "window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}gtag('js',new Date());gtag('config','AW-123456789');"}}},
			{ID: "meta-pixel", Enabled: true, Name: "Meta Pixel", Provider: "Meta Platforms Ireland Limited", Category: "advertising",
				Purpose: ads, DataShared: []string{"ip_address", "advertising_id"},
				Cookies:   []consent.Cookie{{Name: "_fbp", Lifetime: "90 days"}},
				LeavesEEA: true, Transfer: "EU-US Data Privacy Framework", PrivacyURL: "https://www.facebook.com/privacy/policy/",
				Tags: []consent.Tag{{Inline: "!function(f,b,e,v,n,t,s){if(f.fbq)return;n=f.fbq=function(){n.callMethod?n.callMethod.apply(n,arguments):n.queue.push(arguments)};if(!f._fbq)f._fbq=n;n.push=n;n.loaded=!0;n.version='2.0';n.queue=[];t=b.createElement(e);t.async=!0;t.src=v;s=b.getElementsByTagName(e)[0];s.parentNode.insertBefore(t,s)}(window,document,'script','https://connect.facebook.net/en_US/fbevents.js');fbq('init','1234567890');fbq('track','PageView');"}}},
			{ID: "linkedin", Enabled: true, Name: "LinkedIn Insight Tag", Provider: "LinkedIn Ireland Unlimited Company", Category: "advertising",
				Purpose: ads, DataShared: []string{"ip_address", "advertising_id"},
				Cookies:   []consent.Cookie{{Name: "li_sugr", Lifetime: "90 days"}, {Name: "bcookie", Lifetime: "1 year"}},
				LeavesEEA: true, Transfer: "Standard contractual clauses", PrivacyURL: "https://www.linkedin.com/legal/privacy-policy",
				Tags: []consent.Tag{{Inline: "window._linkedin_partner_id='123456';"}, {Src: "https://snap.licdn.com/li.lms-analytics/insight.min.js"}}},
			{ID: "criteo", Enabled: true, Name: "Criteo", Provider: "Criteo SA", Category: "advertising",
				Purpose: ads, DataShared: []string{"ip_address", "advertising_id"},
				Cookies:    []consent.Cookie{{Name: "cto_bundle", Lifetime: "13 months"}},
				PrivacyURL: "https://www.criteo.com/privacy/",
				Tags:       []consent.Tag{{Src: "https://static.criteo.net/js/ld/ld.js?a=12345"}}},
			{ID: "tiktok", Enabled: false, Name: "TikTok Pixel", Provider: "TikTok Technology Limited", Category: "advertising",
				Purpose: ads, DataShared: []string{"ip_address", "advertising_id"},
				Cookies:   []consent.Cookie{{Name: "_ttp", Lifetime: "13 months"}},
				LeavesEEA: true, PrivacyURL: "https://www.tiktok.com/legal/privacy-policy-eea",
				Tags: []consent.Tag{{Src: "https://analytics.tiktok.com/i18n/pixel/events.js?sdkid=DISABLED"}}},
		},
		FloatingButton:  true,
		RetentionPeriod: 5 * 365 * 24 * time.Hour,
	}
}

// MustBuild builds site's bundle or fails the test.
func MustBuild(tb testing.TB, site *consent.Site, opts banner.Options) *banner.Bundle {
	tb.Helper()
	b, err := banner.Build(site, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestBuildContents(t *testing.T) {
	t.Parallel()
	site := MustSite(t)
	site.Languages = []string{"de", "fr"}
	site.Partner("criteo").Storage = []string{"cto_bundle_ls", "cto_*"}
	b := MustBuild(t, site, banner.Options{})
	if !slices.Equal(b.Languages, []string{"de", "fr"}) || len(b.Scripts) != 2 || len(b.Prefs) != 2 {
		t.Fatalf("languages %v, %d first-layer and %d second-layer scripts; want de and fr, one of each per language", b.Languages, len(b.Scripts), len(b.Prefs))
	}
	for i, c := range b.Scripts[0].Raw {
		if c >= 0x80 {
			t.Fatalf("byte %d is not ASCII: the bundle must read right whatever the page's charset", i)
		}
	}
	files := map[string]string{
		"de script":       MustUnescape(t, b.Scripts[0].Raw),
		"fr script":       MustUnescape(t, b.Scripts[1].Raw),
		"fr second layer": MustUnescape(t, b.Prefs[1].Raw),
	}
	tests := []struct {
		file string
		text string
		want bool
	}{
		{"de script", `"mixvoip.com"`, true},
		{"de script", "Ihre Wahl zu Cookies", true},
		{"de script", "nutzen Mixvoip S.A. und Werbepartner", true},
		{"de script", "Technisch notwendig", true},
		{"de script", "https://static.criteo.net/js/ld/ld.js?a=12345", true},
		{"de script", "Meta Pixel", true},
		{"de script", "Meta Platforms Ireland Limited", false},
		{"de script", "Damit die Website funktioniert", false},
		{"de script", `["cto_bundle_ls","cto_*"]`, true},
		{"de script", "analytics.tiktok.com", false},
		{"de script", "TikTok", false},
		{"de script", "Votre choix concernant les cookies", false},
		{"de script", "Techniquement nécessaires", false},
		{"de script", "Your choice about cookies", false},
		{"de script", "{controller}", false},
		{"de script", "__SETTINGS__", false},
		{"fr script", "Votre choix concernant les cookies", true},
		{"fr script", "Techniquement nécessaires", true},
		{"fr script", "Ihre Wahl zu Cookies", false},
		{"fr second layer", "Votre choix concernant les cookies", true},
		{"fr second layer", "Techniquement nécessaires", true},
		{"fr second layer", "Meta Platforms Ireland Limited", true},
		{"fr second layer", "Technisch notwendig", false},
		{"fr second layer", `f:"` + b.Fingerprint + `"`, true},
		{"fr second layer", "Ihre Wahl zu Cookies", false},
		{"fr second layer", "static.criteo.net", false},
	}
	for _, tt := range tests {
		t.Run(tt.file+" "+tt.text, func(t *testing.T) {
			if got := strings.Contains(files[tt.file], tt.text); got != tt.want {
				t.Errorf("%s contains %q: %v, want %v", tt.file, tt.text, got, tt.want)
			}
		})
	}
}

func TestBuildRewriteSrc(t *testing.T) {
	t.Parallel()
	b := MustBuild(t, MustSite(t), banner.Options{RewriteSrc: func(id, src string) string {
		return "/demo/fake/" + id + ".js"
	}})
	js := string(b.Scripts[0].Raw)
	if !strings.Contains(js, "/demo/fake/criteo.js") || strings.Contains(js, "static.criteo.net") {
		t.Error("RewriteSrc not applied to partner tags")
	}
	if strings.Contains(js, "/demo/fake/tiktok.js") {
		t.Error("disabled partner's tag in the bundle")
	}
	if b.Fingerprint != banner.Fingerprint(MustSite(t)) {
		t.Error("RewriteSrc changed the fingerprint")
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*consent.Site)
	}{
		{"unknown language", func(s *consent.Site) { s.Languages = []string{"de", "xx"} }},
		{"no language", func(s *consent.Site) { s.Languages = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := MustSite(t)
			tt.edit(site)
			if _, err := banner.Build(site, banner.Options{}); err == nil {
				t.Error("Build: no error")
			}
		})
	}
}

// TestFingerprintUnchanged: the fingerprints of fixed sites are what they were. A
// new fingerprint asks every visitor of the site again, so a change here must come
// from a change of what the banner shows (texts included), never from a refactoring.
func TestFingerprintUnchanged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                  string
		edit                  func(*consent.Site)
		fingerprint, coverage string
	}{
		{"partners enabled", func(*consent.Site) {}, "4a80e1d10719a3bb", "b407a5e436ae3092"},
		{"none enabled", func(s *consent.Site) {
			for i := range s.Partners {
				s.Partners[i].Enabled = false
			}
		}, "4a8132100da19335", "b407a5e436ae3092"},
		{"none in the catalog", func(s *consent.Site) { s.Partners = nil }, "4a8132100da19335", "4a8132100da19335"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			site := MustSite(t)
			tt.edit(site)
			b := MustBuild(t, site, banner.Options{})
			if b.Fingerprint != tt.fingerprint || b.Coverage != tt.coverage {
				t.Errorf("fingerprint %s and coverage %s; they were %s and %s", b.Fingerprint, b.Coverage, tt.fingerprint, tt.coverage)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	base := banner.Fingerprint(MustSite(t))
	if len(base) != 16 {
		t.Fatalf("Fingerprint = %q, want 16 hex digits", base)
	}
	tests := []struct {
		name    string
		edit    func(*consent.Site)
		changes bool
	}{
		{"partner switched on", func(s *consent.Site) { s.Partner("tiktok").Enabled = true }, true},
		{"partner switched off", func(s *consent.Site) { s.Partner("criteo").Enabled = false }, true},
		{"policy version", func(s *consent.Site) { s.Policy.Version = "2026-01" }, true},
		{"category text", func(s *consent.Site) { s.Categories[1].Description["fr"] = "Autre texte." }, true},
		{"partner purpose", func(s *consent.Site) { s.Partner("meta-pixel").Purpose = consent.Text{"en": "Other"} }, true},
		{"partner cookie", func(s *consent.Site) { s.Partner("criteo").Cookies[0].Lifetime = "1 year" }, true},
		{"partner storage", func(s *consent.Site) { s.Partner("criteo").Storage = []string{"cto_ls"} }, true},
		{"controller", func(s *consent.Site) { s.Controller.Name = "Mixvoip SA" }, true},
		{"new category", func(s *consent.Site) {
			s.Categories = append(s.Categories, consent.Category{ID: "analytics", Name: consent.Text{"en": "Analytics"}})
		}, true},
		{"language added", func(s *consent.Site) { s.Languages = s.Languages[:3] }, true},
		{"tag src", func(s *consent.Site) {
			s.Partner("criteo").Tags[0].Src = "https://static.criteo.net/js/ld/ld.js?a=99999"
		}, false},
		{"inline tag (account id)", func(s *consent.Site) { s.Partner("linkedin").Tags[0].Inline = "window._linkedin_partner_id='999';" }, false},
		{"disabled partner's text", func(s *consent.Site) { s.Partner("tiktok").Name = "TikTok" }, false},
		{"partner order", func(s *consent.Site) { s.Partners[0], s.Partners[1] = s.Partners[1], s.Partners[0] }, false},
		{"text of a language the site lacks", func(s *consent.Site) { s.Categories[0].Name["it"] = "Tecnici" }, false},
		{"origins", func(s *consent.Site) { s.Origins = append(s.Origins, "https://new.mixvoip.com") }, false},
		{"cookie lifetime", func(s *consent.Site) { s.Cookie.RefusalLifetime = 30 * 24 * time.Hour }, false},
		{"text override", func(s *consent.Site) { s.Texts = map[string]map[string]string{"de": {"title": "Cookies bei Mixvoip"}} }, true},
		{"text override of a language the site lacks", func(s *consent.Site) { s.Texts = map[string]map[string]string{"it": {"title": "Cookie"}} }, false},
		{"theme", func(s *consent.Site) { s.Theme = map[string]string{"accent": "#12315c"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			site := MustSite(t)
			tt.edit(site)
			got := banner.Fingerprint(site)
			if (got != base) != tt.changes {
				t.Errorf("fingerprint changed: %v, want %v", got != base, tt.changes)
			}
			if b := MustBuild(t, site, banner.Options{}); b.Fingerprint != got || !bytes.Contains(b.Scripts[0].Raw, []byte(`"`+got+`"`)) {
				t.Errorf("bundle fingerprint %q, want %q compiled in", b.Fingerprint, got)
			}
		})
	}
}

// TestCoverage: the coverage fingerprint decides whether a stored answer still holds
// when the material fingerprint changed. Switching partners on or off leaves it alone
// (the banner then checks that every enabled partner was answered); any change of
// what a visitor is told, about any partner of the catalog, changes it.
func TestCoverage(t *testing.T) {
	t.Parallel()
	base := MustBuild(t, MustSite(t), banner.Options{}).Coverage
	tests := []struct {
		name    string
		edit    func(*consent.Site)
		changes bool
	}{
		{"partner switched on", func(s *consent.Site) { s.Partner("tiktok").Enabled = true }, false},
		{"partner switched off", func(s *consent.Site) { s.Partner("criteo").Enabled = false }, false},
		{"disabled partner's text", func(s *consent.Site) { s.Partner("tiktok").Name = "TikTok" }, true},
		{"enabled partner's cookies", func(s *consent.Site) { s.Partner("criteo").Cookies[0].Lifetime = "1 year" }, true},
		{"policy version", func(s *consent.Site) { s.Policy.Version = "2026-01" }, true},
		{"tag src", func(s *consent.Site) { s.Partner("criteo").Tags[0].Src = "https://static.criteo.net/x.js" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			site := MustSite(t)
			tt.edit(site)
			b := MustBuild(t, site, banner.Options{})
			if (b.Coverage != base) != tt.changes {
				t.Errorf("coverage changed: %v, want %v", b.Coverage != base, tt.changes)
			}
			if len(b.Coverage) != 16 || !bytes.Contains(b.Scripts[0].Raw, []byte(`"`+b.Coverage+`"`)) {
				t.Errorf("coverage %q is not compiled in", b.Coverage)
			}
		})
	}
}

func TestETag(t *testing.T) {
	t.Parallel()
	a := MustBuild(t, MustSite(t), banner.Options{})
	b := MustBuild(t, MustSite(t), banner.Options{})
	if !reflect.DeepEqual(a.Scripts, b.Scripts) || !reflect.DeepEqual(a.Prefs, b.Prefs) {
		t.Errorf("two builds differ: ETag %s vs %s", a.Scripts[0].ETag, b.Scripts[0].ETag)
	}
	seen := map[string]bool{}
	for _, asset := range append(a.Scripts, a.Prefs...) {
		if e := asset.ETag; len(e) < 10 || e[0] != '"' || e[len(e)-1] != '"' || seen[e] {
			t.Errorf("ETag %s is not a strong quoted tag of its own", e)
		}
		seen[asset.ETag] = true
	}
	site := MustSite(t)
	site.Partner("criteo").Tags[0].Src = "https://static.criteo.net/js/ld/ld.js?a=99999"
	if c := MustBuild(t, site, banner.Options{}); c.Scripts[0].ETag == a.Scripts[0].ETag {
		t.Error("ETag did not change with the content")
	}
}

func TestCompressed(t *testing.T) {
	t.Parallel()
	b := MustBuild(t, MustSite(t), banner.Options{})
	for _, asset := range append(b.Scripts, b.Prefs...) {
		tests := []struct {
			name   string
			data   []byte
			reader func(io.Reader) (io.Reader, error)
		}{
			{"gzip", asset.Gzip, func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
			{"brotli", asset.Brotli, func(r io.Reader) (io.Reader, error) { return brotli.NewReader(r), nil }},
		}
		for _, tt := range tests {
			t.Run(asset.ETag+" "+tt.name, func(t *testing.T) {
				r, err := tt.reader(bytes.NewReader(tt.data))
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, asset.Raw) {
					t.Error("decompressed file differs from the raw one")
				}
			})
		}
	}
}

// The size budget of docs/BENCHMARKS.md: the first view of every shipped site in every
// language (JS, CSS and the texts of that language) at most 6,000 B brotli. Builds are
// deterministic, so this is a test, not a benchmark.
func TestShippedSitesSize(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range cfg.SiteKeys() {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			b := MustBuild(t, cfg.Sites[key], banner.Options{})
			for i, s := range b.Scripts {
				t.Logf("%s %s: raw %d B, gzip %d B, brotli %d B", key, b.Languages[i], len(s.Raw), len(s.Gzip), len(s.Brotli))
				if len(s.Brotli) > 6000 {
					t.Errorf("%s: brotli script is %d bytes, budget 6,000", b.Languages[i], len(s.Brotli))
				}
			}
		})
	}
}

func TestTextOverrides(t *testing.T) {
	t.Parallel()
	site := MustSite(t)
	site.Languages = []string{"de", "en"}
	site.Texts = map[string]map[string]string{
		"de": {"title": "Cookies bei {controller}", "allowOnce": "Nur jetzt laden"},
		"en": {"rejectAll": "Refuse all"},
	}
	b := MustBuild(t, site, banner.Options{})
	js := MustUnescape(t, b.Scripts[0].Raw) + MustUnescape(t, b.Scripts[1].Raw)
	tests := []struct {
		text string
		want bool
	}{
		{"Cookies bei Mixvoip S.A.", true},
		{"Nur jetzt laden", true},
		{"Refuse all", true},
		{"Ihre Wahl zu Cookies", false},
		{"Einmal erlauben", false},
		{`"Reject all"`, false},
		{"Alle ablehnen", true}, // not overridden
	}
	for _, tt := range tests {
		if got := strings.Contains(js, tt.text); got != tt.want {
			t.Errorf("bundle contains %q: %v, want %v", tt.text, got, tt.want)
		}
	}
	site.Texts = map[string]map[string]string{"de": {"titel": "x"}}
	if _, err := banner.Build(site, banner.Options{}); err == nil {
		t.Error("Build accepted an unknown text key")
	}
}

func TestTheme(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		theme map[string]string
		want  string // the colours compiled in, in the order of consent.ThemeNames
	}{
		{"none", nil, ""},
		{"accent only", map[string]string{"accent": "#12315c"}, `m:["#ffffff","#1b1b1f","#12315c","#ffffff","#6b6b76","#0b57d0"]`},
		{"all", map[string]string{"background": "#000", "text": "#fff", "accent": "#ff0", "accent-text": "#000", "border": "#888", "focus": "#ff0"},
			`m:["#000","#fff","#ff0","#000","#888","#ff0"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			site := MustSite(t)
			site.Theme = tt.theme
			js := string(MustBuild(t, site, banner.Options{}).Scripts[0].Raw)
			if tt.want == "" && strings.Contains(js, `m:[`) || tt.want != "" && !strings.Contains(js, tt.want) {
				t.Errorf("bundle has no %s", tt.want)
			}
			// the CSS properties the colours go to, in the same order
			if !strings.Contains(js, `["bg","fg","ac","on","bd","fc"]`) {
				t.Error("bundle does not apply the colours to banner.css's properties in the order of consent.ThemeNames")
			}
		})
	}
}

// TestNodeCheck parses the bundle with node when it is installed.
func TestNodeCheck(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	f := filepath.Join(t.TempDir(), "banner.js")
	if err := os.WriteFile(f, MustBuild(t, MustSite(t), banner.Options{}).Scripts[0].Raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(node, "--check", f).CombinedOutput(); err != nil {
		t.Errorf("node --check: %v\n%s", err, out)
	}
}

// TestTextsComplete: every language file has exactly consent.TextKeys, the keys that
// sites.yaml may override, and no empty text.
func TestTextsComplete(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("i18n/*.json")
	if err != nil || len(files) != len(consent.Languages) {
		t.Fatalf("i18n files %v, want one per consent.Languages %v", files, consent.Languages)
	}
	for _, lang := range consent.Languages {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			texts := MustTexts(t, lang)
			for _, k := range consent.TextKeys {
				if strings.TrimSpace(texts[k]) == "" {
					t.Errorf("%s.json: missing %q", lang, k)
				}
			}
			for k := range texts {
				if !slices.Contains(consent.TextKeys, k) {
					t.Errorf("%s.json: %q is not in consent.TextKeys", lang, k)
				}
			}
			if !strings.Contains(texts["body"], "{controller}") {
				t.Errorf("%s.json: body does not name the controller", lang)
			}
			if !strings.Contains(texts["embed"], "{partner}") {
				t.Errorf("%s.json: embed does not name the partner", lang)
			}
		})
	}
}

// MustTexts returns the UI texts of one language file.
func MustTexts(tb testing.TB, lang string) map[string]string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("i18n", lang+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	var t map[string]string
	if err := json.Unmarshal(data, &t); err != nil {
		tb.Fatal(err)
	}
	return t
}

var escape = regexp.MustCompile(`\\x[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}|\\u\{[0-9A-Fa-f]+\}`)

// MustUnescape returns js with the \x and \u escapes of its string literals decoded:
// the bundle is ASCII, texts in other scripts are escaped.
func MustUnescape(tb testing.TB, js []byte) string {
	tb.Helper()
	return escape.ReplaceAllStringFunc(string(js), func(e string) string {
		n, err := strconv.ParseUint(strings.Trim(e[2:], "{}"), 16, 32)
		if err != nil {
			tb.Fatalf("escape %s: %v", e, err)
		}
		return string(rune(n))
	})
}
