package config

import (
	"slices"
	"strings"

	consent "github.com/mixvoip/consentd"
)

// overrides checks a site's text overrides: languages of the site, known keys,
// no empty text.
func (v *validator) overrides(p path, sf *siteFile) map[string]map[string]string {
	if len(sf.Texts) == 0 {
		return nil
	}
	languagesKnown := v.intact(slices.Concat(p, path{"languages"}))
	p = append(p, "texts")
	out := make(map[string]map[string]string, len(sf.Texts))
	for lang, texts := range sf.Texts {
		if !slices.Contains(sf.Languages, lang) && languagesKnown {
			v.errorf(append(p, lang), "texts for %q, which is not a language of this site (%s)", lang, strings.Join(sf.Languages, ", "))
			continue
		}
		out[lang] = make(map[string]string, len(texts))
		for key, text := range texts {
			switch {
			case !slices.Contains(consent.TextKeys, key):
				v.errorf(append(p, lang, key), "unknown text key %q (the banner has %s)", key, strings.Join(consent.TextKeys, ", "))
			case strings.TrimSpace(text) == "":
				v.errorf(append(p, lang, key), "text %q in %q is empty", key, lang)
			}
			out[lang][key] = text
		}
	}
	return out
}
