package config

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	consent "github.com/mixvoip/consentd"
)

var hexColour = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// theme checks a site's colours and the contrast of the pairs that carry text, with
// the banner's defaults filled in for the colours the site leaves out.
func (v *validator) theme(p path, theme map[string]string) map[string]string {
	if len(theme) == 0 {
		return nil
	}
	ok := true
	for name, colour := range theme {
		switch {
		case !slices.Contains(consent.ThemeNames, name):
			v.errorf(append(p, name), "unknown theme colour %q (use %s)", name, strings.Join(consent.ThemeNames, ", "))
			ok = false
		case !hexColour.MatchString(colour):
			v.errorf(append(p, name), "theme %s: %q is not a hex colour such as #1b1b1f or #fff", name, colour)
			ok = false
		}
	}
	// A colour that had the wrong type is missing here, and the default that takes its
	// place would be blamed for a contrast the site never chose.
	if !ok || !v.intact(p) {
		return theme
	}
	for _, pair := range consent.ThemeContrast {
		fg, bg := effective(theme, pair[0]), effective(theme, pair[1])
		if r := Contrast(fg, bg); r < consent.MinContrast {
			// reported on the colour the site set (the first of the two it set)
			at := pair[0]
			if _, set := theme[at]; !set {
				at = pair[1]
			}
			v.errorf(append(p, at), "theme: %s %s on %s %s has contrast %.2f:1, below %.1f:1 (WCAG 2.2 AA)",
				pair[0], fg, pair[1], bg, math.Floor(r*100)/100, consent.MinContrast)
		}
	}
	return theme
}

func effective(theme map[string]string, name string) string {
	if c, ok := theme[name]; ok {
		return c
	}
	return consent.DefaultTheme[name]
}

// Contrast returns the WCAG 2.2 contrast ratio (1 to 21) of two hex colours
// (#rgb or #rrggbb).
func Contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

// luminance is the WCAG relative luminance of a hex colour.
func luminance(hex string) float64 {
	h := strings.TrimPrefix(hex, "#")
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	n, err := strconv.ParseUint(h, 16, 32)
	if err != nil || len(h) != 6 {
		panic(fmt.Sprintf("config: luminance of %q", hex)) // callers check hexColour first
	}
	var l float64
	for i, w := range []float64{0.2126, 0.7152, 0.0722} {
		c := float64(n>>(16-8*i)&0xff) / 255
		if c <= 0.04045 {
			c /= 12.92
		} else {
			c = math.Pow((c+0.055)/1.055, 2.4)
		}
		l += w * c
	}
	return l
}
