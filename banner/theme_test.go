package banner

import (
	"os"
	"regexp"
	"strings"
	"testing"

	consent "github.com/mixvoip/consentd"
)

// TestCSSDefaultTheme: the stylesheet's light colours are consent.DefaultTheme, which
// package config checks site themes against, and it defines the property of every theme
// colour.
func TestCSSDefaultTheme(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("src/banner.css")
	if err != nil {
		t.Fatal(err)
	}
	host := regexp.MustCompile(`(?m)^:host\{([^}]*)\}`).FindSubmatch(data)
	if host == nil {
		t.Fatal("banner.css has no :host rule with the default colours")
	}
	for _, name := range consent.ThemeNames {
		prop := themeProperties[name]
		want := "--" + prop + ":" + consent.DefaultTheme[name] + ";"
		if prop == "" || !strings.Contains(string(host[1])+";", want) {
			t.Errorf(":host has no %s (theme %s)", want, name)
		}
	}
}
