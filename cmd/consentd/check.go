package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
)

// check validates a sites.yaml and prints what each site serves and every warning;
// on error the returned error lists every problem as file:line: message. Warnings
// (placeholder account ids) leave the file valid: consentd serves it all the same.
func check(args []string, stdout io.Writer) error {
	path := envOr("CONSENTD_CONFIG", "sites.yaml")
	switch len(args) {
	case 0:
	case 1:
		path = args[0]
	default:
		return fmt.Errorf("usage: consentd check [FILE]")
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	for _, key := range cfg.SiteKeys() {
		site := cfg.Sites[key]
		var enabled []string
		for _, p := range site.Partners {
			if p.Enabled {
				enabled = append(enabled, p.ID)
			}
		}
		fmt.Fprintf(stdout, "%s: fingerprint %s, languages %v, partners enabled %v\n", key, banner.Fingerprint(site), site.Languages, enabled)
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stdout, w)
	}
	fmt.Fprintf(stdout, "%s is valid (%s)", path, count(len(cfg.Sites), "site"))
	if len(cfg.Warnings) > 0 {
		fmt.Fprintf(stdout, ", with %s", count(len(cfg.Warnings), "warning"))
	}
	fmt.Fprintln(stdout)
	return nil
}

// count returns "1 site", "4 sites", "2 leaves".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if plural, ok := strings.CutSuffix(noun, "leaf"); ok {
		return fmt.Sprintf("%d %sleaves", n, plural)
	}
	if plural, ok := strings.CutSuffix(noun, "ry"); ok {
		return fmt.Sprintf("%d %sries", n, plural)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
