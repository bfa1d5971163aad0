package config_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
)

func TestShippedSitesYAMLIsValid(t *testing.T) {
	cfg, err := config.Load("../sites.yaml")
	if err != nil {
		t.Fatalf("shipped sites.yaml: %v", err)
	}
	want := []string{"mixvoip.com", "mixvoip.org", "voxbi.com", "voxbi.team"}
	if got := strings.Join(cfg.SiteKeys(), " "); got != strings.Join(want, " ") {
		t.Fatalf("sites = %s, want %s", got, strings.Join(want, " "))
	}
	// Every enabled partner's account ships as a marked placeholder; each is warned
	// about on its line, and nothing else is.
	var marked []int
	for i, l := range strings.Split(MustRead(t, "../sites.yaml"), "\n") {
		if strings.Contains(l, "enabled: true") && strings.Contains(l, "# PLACEHOLDER") {
			marked = append(marked, i+1)
		}
	}
	var warned []int
	for _, w := range cfg.Warnings {
		warned = append(warned, w.Line)
	}
	if len(marked) == 0 || !slices.Equal(warned, marked) {
		t.Errorf("warnings on lines %v, want one on each enabled PLACEHOLDER line %v", warned, marked)
	}
	for _, key := range want {
		site := cfg.Sites[key]
		for _, lang := range []string{"de", "fr", "en"} {
			if !slices.Contains(site.Languages, lang) {
				t.Errorf("%s: no %q texts; every site speaks at least de, fr and en", key, lang)
			}
		}
		for _, p := range site.Partners {
			for _, tag := range p.Tags {
				if p.Enabled && strings.Contains(tag.Src+tag.Inline, "{account}") {
					t.Errorf("%s: partner %s keeps an unfilled {account}", key, p.ID)
				}
			}
		}
	}
}

// TestPlaceholderAccounts: an enabled partner whose account id looks made up, or is
// marked PLACEHOLDER on its line, is a warning; the file stays valid.
func TestPlaceholderAccounts(t *testing.T) {
	t.Parallel()
	const entry = `      pixel: { enabled: true, account: "42" }`
	base := MustRead(t, "testdata/minimal.yaml")
	line := strings.Count(base[:strings.Index(base, entry)], "\n") + 1
	tests := []struct {
		name, entry string
		account     string // the one warned about, "" for no warning
		below       int    // lines from the entry's first to the warning's
	}{
		{"real id", entry, "", 0},
		{"zeros and a digit", `      pixel: { enabled: true, account: AW-000000001 }`, "AW-000000001", 0},
		{"zeros and a short run", `      pixel: { enabled: true, account: "000042" }`, "000042", 0},
		{"only zeros", `      pixel: { enabled: true, account: "0000" }`, "0000", 0},
		{"a few leading zeros", `      pixel: { enabled: true, account: "0012345" }`, "", 0},
		{"zeros at the end", `      pixel: { enabled: true, account: "1000000" }`, "", 0},
		{"marked in a flow mapping", entry + `   # PLACEHOLDER`, "42", 0},
		{"marked on the account line", "      pixel:\n        enabled: true\n        account: \"42\"  # PLACEHOLDER: ask marketing", "42", 2},
		{"marked on the partner line", "      pixel: # PLACEHOLDER\n        enabled: true\n        account: \"42\"", "42", 2},
		{"another comment", entry + `   # the real one`, "", 0},
		{"disabled", `      pixel: { enabled: false, account: "0000001" }   # PLACEHOLDER`, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := MustParse(t, strings.Replace(base, entry, tt.entry, 1))
			var got, want []string
			for _, w := range cfg.Warnings {
				got = append(got, w.Error())
			}
			if tt.account != "" {
				want = []string{fmt.Sprintf("sites.yaml:%d: warning: partner pixel on example.com: account %q looks like a placeholder; its tag will report nothing until you put the real id", line+tt.below, tt.account)}
			}
			if !slices.Equal(got, want) {
				t.Errorf("warnings = %q, want %q", got, want)
			}
		})
	}
}

func TestDefaultsAndResolution(t *testing.T) {
	cfg := MustParse(t, MustRead(t, "testdata/minimal.yaml"))
	site := cfg.Sites["example.com"]
	if site.Cookie.Name != "consent" || site.Cookie.Domain != "example.com" {
		t.Errorf("cookie = %+v, want name consent on example.com", site.Cookie)
	}
	if site.Cookie.ConsentLifetime != 182*24*time.Hour || site.Cookie.RefusalLifetime != 182*24*time.Hour {
		t.Errorf("lifetimes = %v/%v, want 182 days each", site.Cookie.ConsentLifetime, site.Cookie.RefusalLifetime)
	}
	if site.Controller.Name != "Example S.A." {
		t.Errorf("controller = %q, want the top-level one", site.Controller.Name)
	}
	p := site.Partner("pixel")
	if p == nil || !p.Enabled || p.Tags[0].Src != "https://pixel.example/tag.js?id=42" {
		t.Fatalf("pixel = %+v, want enabled with account 42 filled in", p)
	}
}

func TestPartnerNotListedForSiteIsOff(t *testing.T) {
	yaml := strings.Replace(MustRead(t, "testdata/minimal.yaml"), `      pixel: { enabled: true, account: "42" }`, `      {}`, 1)
	yaml = strings.Replace(yaml, "    partners:\n      {}\n", "", 1)
	site := MustParse(t, yaml).Sites["example.com"]
	if p := site.Partner("pixel"); p == nil || p.Enabled {
		t.Fatalf("pixel = %+v, want listed and disabled", p)
	}
}

// TestErrorsNameFileAndLine changes one thing in a valid file and expects the error
// on the line where the change is, with a message that says what to fix.
func TestErrorsNameFileAndLine(t *testing.T) {
	base := MustRead(t, "testdata/minimal.yaml")
	tests := []struct {
		name     string
		old, new string
		want     string // part of the message
		at       string // where the error is reported, if not on the change
	}{
		{"unknown key", "    leaves_eea: false", "    leaves_eea: false\n    colour: red", `unknown key "colour"`, ""},
		{"misspelt site key", "    languages: [en]", "    langauges: [en]", `unknown key "langauges"`, ""},
		{"duplicate category id", "  - id: advertising", "  - id: technical", `duplicate category id "technical"`, ""},
		{"duplicate partner id", "partners:\n  pixel:", "partners:\n  pixel: {}\n  pixel:", `"pixel" already defined`, ""},
		{"unknown category", "    category: advertising", "    category: marketing", `unknown category "marketing"`, ""},
		{"partner in required category", "    category: advertising", "    category: technical", `always on`, ""},
		{"origin with path", "https://www.example.com]", "https://www.example.com/]", `without a path`, ""},
		{"origin without scheme", "[https://example.com,", "[example.com,", `must start with https://`, ""},
		{"origin in upper case", "https://www.example.com]", "https://WWW.example.com]", `lower case`, ""},
		{"origin outside cookie domain", "https://www.example.com]", "https://www.other.com]", `not under the cookie domain`, ""},
		{"malformed privacy url", "https://pixel.example/privacy", "pixel.example/privacy", `privacy_url "pixel.example/privacy"`, ""},
		{"malformed tag src", "https://pixel.example/tag.js?id={account}", "//pixel.example/tag.js", `src`, ""},
		{"tag with src and inline", "      - src: https://pixel.example/tag.js?id={account}", "      - src: https://pixel.example/tag.js?id={account}\n        inline: x()", `exactly one of src or inline`, ""},
		{"unknown partner on site", `      pixel: { enabled: true, account: "42" }`, `      pixle: { enabled: true }`, `unknown partner "pixle"`, ""},
		{"missing account", `      pixel: { enabled: true, account: "42" }`, `      pixel: { enabled: true }`, `needs account`, ""},
		{"unknown language", "    languages: [en]", "    languages: [en, xx]", `unknown language "xx"`, ""},
		{"missing translation", "    languages: [en]", "    languages: [en, de]", `needs name and description in "de"`, "  - id: technical"},
		{"consent over 13 months", "    languages: [en]", "    languages: [en]\n    cookie: { consent_days: 400 }", `never kept longer than 13 months`, ""},
		{"unknown data shared", "data_shared: [ip_address]", "data_shared: [email]", `unknown data_shared "email"`, ""},
		{"leaves EEA without safeguard", "    leaves_eea: false", "    leaves_eea: true", `transfer`, ""},
		{"storage key with a space", "      - { name: _px, lifetime: 90 days }", "      - { name: _px, lifetime: 90 days }\n    storage: [\"px id\"]", `storage key "px id"`, ""},
		{"cookie lifetime in words only", "{ name: _px, lifetime: 90 days }", "{ name: _px, lifetime: three months }", `cookie "_px": lifetime "three months" does not start with how long`, ""},
		{"partner host as a URL", "      - { name: _px, lifetime: 90 days }", "      - { name: _px, lifetime: 90 days }\n    hosts: [\"https://px.example\"]", `partner "pixel": host "https://px.example"`, ""},
		{"technical host in capitals", "    languages: [en]", "    languages: [en]\n    technical:\n      hosts: [CDN.example]", `site "example.com": technical: host "CDN.example"`, ""},
		{"technical cookie without lifetime", "    languages: [en]", "    languages: [en]\n    technical:\n      cookies: [{ name: sid }]", `technical: cookie "sid": lifetime ""`, ""},
		{"wrong type", "    languages: [en]", "    languages: en", `languages must be a list`, ""},
		{"syntax error", "    languages: [en]", "    languages: [en", `did not find expected`, ""},
		{"jurisdiction not a country code", "  jurisdiction: LU", "  jurisdiction: Luxembourg", `ISO 3166 country code`, ""},
		{"no policy version", `version: "1"`, `version: ""`, `policy version is required`, ""},
		{"unknown text key", "    languages: [en]", "    languages: [en]\n    texts:\n      en:\n        titel: Hello", `unknown text key "titel"`, ""},
		{"texts of a language not of the site", "    languages: [en]", "    languages: [en]\n    texts:\n      de:\n        title: Hallo", `"de", which is not a language of this site`, ""},
		{"empty text", "    languages: [en]", "    languages: [en]\n    texts:\n      en:\n        title: \"\"", `text "title" in "en" is empty`, ""},
		{"unknown theme colour", "    languages: [en]", "    languages: [en]\n    theme:\n      primary: \"#000\"", `unknown theme colour "primary"`, ""},
		{"theme colour not hex", "    languages: [en]", "    languages: [en]\n    theme:\n      accent: red", `"red" is not a hex colour`, ""},
		{"theme colour with alpha", "    languages: [en]", "    languages: [en]\n    theme:\n      accent: \"#0b57d0cc\"", `is not a hex colour`, ""},
		{"text on background below 4.5", "    languages: [en]", "    languages: [en]\n    theme:\n      text: \"#777777\"", `text #777777 on background #ffffff has contrast 4.47:1`, ""},
		{"text on a set background", "    languages: [en]", "    languages: [en]\n    theme:\n      background: \"#333\"", `text #1b1b1f on background #333`, ""},
		{"accent text on accent below 4.5", "    languages: [en]", "    languages: [en]\n    theme:\n      accent: \"#ffcc00\"", `accent-text #ffffff on accent #ffcc00`, ""},
		{"accent pair both set", "    languages: [en]", "    languages: [en]\n    theme:\n      accent: \"#0b57d0\"\n      accent-text: \"#1b1b1f\"", `accent-text #1b1b1f on accent #0b57d0`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.old) {
				t.Fatalf("fixture has no %q", tt.old)
			}
			changed := strings.Replace(base, tt.old, tt.new, 1)
			first := strings.Count(base[:strings.Index(base, tt.old)], "\n") + 1
			last := first + strings.Count(tt.new, "\n")
			if tt.at != "" {
				first = strings.Count(base[:strings.Index(base, tt.at)], "\n") + 1
				last = first
			}
			_, err := config.Parse("sites.yaml", []byte(changed))
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %v, want config.Errors", err)
			}
			for _, e := range errs {
				if strings.Contains(e.Message, tt.want) {
					// A problem inside a mapping may be reported on its key, a line above.
					if e.File != "sites.yaml" || e.Line < first-1 || e.Line > last {
						t.Errorf("%v: want line %d", e, first)
					}
					return
				}
			}
			t.Errorf("errors:\n%v\nwant one containing %q", err, tt.want)
		})
	}
}

// TestPartnerWithoutCookiesOrStorage: a partner that declares neither is warned
// about, since a withdrawal removes only what is declared; storage alone will do.
func TestPartnerWithoutCookiesOrStorage(t *testing.T) {
	t.Parallel()
	base := MustRead(t, "testdata/minimal.yaml")
	const cookies = "    cookies:\n      - { name: _px, lifetime: 90 days }\n"
	for _, tt := range []struct {
		name, replacement string
		warned            bool
	}{
		{"cookies", cookies, false},
		{"storage only", "    storage: [_px_ls, \"_px_*\"]\n", false},
		{"neither", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := MustParse(t, strings.Replace(base, cookies, tt.replacement, 1))
			warned := slices.ContainsFunc(cfg.Warnings, func(w *config.Error) bool { return strings.Contains(w.Message, "declares neither cookies nor storage") })
			if warned != tt.warned {
				t.Errorf("warnings %v; want the partner warned about: %t", cfg.Warnings, tt.warned)
			}
		})
	}
	if got := MustParse(t, strings.Replace(base, cookies, cookies+"    storage: [\"_px_*\"]\n", 1)).Sites["example.com"].Partner("pixel").Storage; !slices.Equal(got, []string{"_px_*"}) {
		t.Errorf("storage = %q, want [_px_*]", got)
	}
}

// TestWrongType changes one value of a valid file to the wrong type (or repeats a
// key, which makes the decoder drop the mapping) and expects exactly one error, on
// that line, naming the key as written: no complaint about the zero value the field
// was left with.
func TestWrongType(t *testing.T) {
	t.Parallel()
	base := MustRead(t, "testdata/minimal.yaml")
	tests := []struct {
		name     string
		old, new string
		want     string
	}{
		{"bool", `pixel: { enabled: true, account: "42" }`, `pixel: { enabled: maybe, account: "42" }`, `enabled must be true or false, not "maybe"`},
		{"bool in a list item", "    required: true", "    required: always", `required must be true or false, not "always"`},
		{"whole number", "    languages: [en]", "    languages: [en]\n    retention_days: lots", `retention_days must be a whole number, not "lots"`},
		{"whole number in a mapping", "    languages: [en]", "    languages: [en]\n    cookie: { consent_days: forever }", `consent_days must be a whole number, not "forever"`},
		{"list", "    origins: [https://example.com, https://www.example.com]", "    origins: https://example.com", `origins must be a list, such as [https://example.com]`},
		{"list given a mapping", "    languages: [en]", "    languages: { en: English }", `languages must be a list`},
		{"text in a list", "    languages: [en]", "    languages: [en, { de: German }]", `each item of languages must be text`},
		{"mapping", "    languages: [en]", "    languages: [en]\n    texts: 5", `texts must be a mapping, not "5"`},
		{"mapping of a user's key", `      pixel: { enabled: true, account: "42" }`, `      pixel: on`, `pixel must be a mapping, not "on"`},
		{"mapping for a struct", `    policy: { url: https://example.com/privacy, version: "1" }`, `    policy: https://example.com/privacy`, `policy must be a mapping, not "https://example.com/privacy"`},
		{"text", "    name: Pixel", "    name: { en: Pixel }", `name must be text`},
		{"text in a mapping of texts", "    purpose: { en: Shows you ads. }", "    purpose: { en: [Shows you ads.] }", `en must be text`},
		{"theme colour", "    languages: [en]", "    languages: [en]\n    theme:\n      accent: [\"#000\"]\n      accent-text: \"#1b1b1f\"", `accent must be text`},
		{"category id", "  - id: advertising", "  - id: [advertising]", `id must be text`},
		{"data_shared", "data_shared: [ip_address]", "data_shared: ip_address", `data_shared must be a list, such as [ip_address]`},
		{"duplicate key", "partners:\n  pixel:", "partners:\n  pixel: {}\n  pixel:", `mapping key "pixel" already defined at line 17`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(base, tt.old) {
				t.Fatalf("fixture has no %q", tt.old)
			}
			changed := strings.Replace(base, tt.old, tt.new, 1)
			_, err := config.Parse("sites.yaml", []byte(changed))
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("err = %v, want exactly one error", err)
			}
			at := strings.Count(base[:strings.Index(base, tt.old)], "\n") + 1
			if e := errs[0]; e.Message != tt.want || e.Line < at || e.Line > at+strings.Count(tt.new, "\n") {
				t.Errorf("err = %v, want sites.yaml:%d: %s", e, at, tt.want)
			}
		})
	}
}

// TestWrongTypeKeepsValidating: a value of the wrong type does not hide the other
// problems of the file; all come in one run, in file order.
func TestWrongTypeKeepsValidating(t *testing.T) {
	t.Parallel()
	yaml := strings.NewReplacer(
		"  jurisdiction: LU", "  jurisdiction: Luxembourg",
		"    category: advertising", "    category: nope",
		"    leaves_eea: false", "    leaves_eea: no way",
		"    languages: [en]", "    languages: [en]\n    retention_days: lots\n    floating_button: 1",
		`pixel: { enabled: true, account: "42" }`, `pixel: { enabled: maybe, account: "42" }`,
	).Replace(MustRead(t, "testdata/minimal.yaml"))
	_, err := config.Parse("sites.yaml", []byte(yaml))
	want := strings.Join([]string{
		`sites.yaml:5: controller jurisdiction "Luxembourg" must be an ISO 3166 country code such as LU: receipts name the law that applies`,
		`sites.yaml:20: partner "pixel": unknown category "nope"`,
		`sites.yaml:25: leaves_eea must be true or false, not "no way"`,
		`sites.yaml:33: retention_days must be a whole number, not "lots"`,
		`sites.yaml:34: floating_button must be true or false, not "1"`,
		`sites.yaml:37: enabled must be true or false, not "maybe"`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}

// TestEmptyFile: a file with nothing in it gets one sentence that says what it needs,
// not a line 0 or a list of everything missing.
func TestEmptyFile(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml string }{
		{"no bytes", ""},
		{"only whitespace", "\n   \n\n"},
		{"only comments", "# consentd configuration\n\n# nothing yet\n"},
		{"only a document marker", "---\n# to do\n"},
		{"null document", "~\n"},
	}
	const want = "sites.yaml: the file is empty: it needs controller, dpo, categories, partners and sites (see the shipped sites.yaml)"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse("sites.yaml", []byte(tt.yaml))
			var errs config.Errors
			if !errors.As(err, &errs) || err.Error() != want {
				t.Fatalf("err = %v, want %q", err, want)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  config.Error
		want string
	}{
		{config.Error{File: "sites.yaml", Line: 12, Message: "unknown key"}, "sites.yaml:12: unknown key"},
		{config.Error{File: "sites.yaml", Message: "the file is empty"}, "sites.yaml: the file is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTextsAndTheme(t *testing.T) {
	yaml := strings.Replace(MustRead(t, "testdata/minimal.yaml"), "    languages: [en]\n",
		"    languages: [en]\n    texts:\n      en:\n        title: Cookies at Example\n"+
			"    theme:\n      background: \"#101820\"\n      text: \"#fff\"\n      accent: \"#ffb000\"\n      accent-text: \"#101820\"\n", 1)
	site := MustParse(t, yaml).Sites["example.com"]
	if got := site.Texts["en"]["title"]; got != "Cookies at Example" {
		t.Errorf("texts.en.title = %q", got)
	}
	if got := site.Theme["accent"]; got != "#ffb000" || len(site.Theme) != 4 {
		t.Errorf("theme = %v", site.Theme)
	}
}

func TestContrast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want float64
	}{
		{"#000", "#fff", 21},
		{"#ffffff", "#ffffff", 1},
		{"#777777", "#ffffff", 4.48},
		{"#0b57d0", "#fff", 6.4},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			if got := config.Contrast(tt.a, tt.b); got < tt.want-0.05 || got > tt.want+0.05 {
				t.Errorf("Contrast = %.3f, want %.2f", got, tt.want)
			}
		})
	}
	for _, pair := range consent.ThemeContrast {
		if r := config.Contrast(consent.DefaultTheme[pair[0]], consent.DefaultTheme[pair[1]]); r < consent.MinContrast {
			t.Errorf("default theme: %s on %s is %.2f:1", pair[0], pair[1], r)
		}
	}
}

func TestErrorsReportEveryProblem(t *testing.T) {
	yaml := strings.NewReplacer("category: advertising", "category: nope", "[https://example.com,", "[example.com,").
		Replace(MustRead(t, "testdata/minimal.yaml"))
	_, err := config.Parse("sites.yaml", []byte(yaml))
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("err = %v, want exactly two problems", err)
	}
	if errs[0].Line > errs[1].Line {
		t.Errorf("errors not in file order: %v", err)
	}
}

func MustRead(tb testing.TB, name string) string {
	tb.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

func MustParse(tb testing.TB, yaml string) *config.Config {
	tb.Helper()
	cfg, err := config.Parse("sites.yaml", []byte(yaml))
	if err != nil {
		tb.Fatalf("parse: %v", err)
	}
	return cfg
}
