package scan

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"strings"
	"time"
)

//go:embed report/report.html report/report.css
var reportFiles embed.FS

// maxPagesNamed is how many pages an inventory row names before it counts them.
const maxPagesNamed = 5

var reportTemplate = template.Must(template.New("report.html").Funcs(template.FuncMap{
	"css": func() template.CSS {
		b, _ := reportFiles.ReadFile("report/report.css")
		return template.CSS(b)
	},
	"join":  strings.Join,
	"date":  func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"violations": func(r *Report) int {
		v, _ := r.Counts()
		return v
	},
	"warnings": func(r *Report) int {
		_, w := r.Counts()
		return w
	},
	"siteViolations": func(s *Site) int {
		v, _ := s.Counts()
		return v
	},
	"anchor": func(site string) string { return "site-" + strings.ReplaceAll(site, ".", "-") },
	"seconds": func(s Seconds) string {
		return strings.TrimSuffix(strings.TrimSuffix(time.Duration(s).String(), "0s"), "0m")
	},
	"plural": func(n int, noun string) string {
		if n == 1 {
			return "1 " + noun
		}
		return fmt.Sprintf("%d %ss", n, noun)
	},
	"lifetime": func(s Seconds) string { return formatLifetime(time.Duration(s)) },
	"owner":    Owner.String,
	// flagged marks in the side-by-side view what is a finding in its state.
	"flagged": func(s State, o Owner) bool { return !o.Allowed(s) },
	"pages":   pagesText,
}).ParseFS(reportFiles, "report/report.html"))

// WriteHTML writes r as one self-contained HTML page: no script, nothing loaded from
// elsewhere, so that it can be filed and opened years later.
func WriteHTML(w io.Writer, r *Report) error {
	if err := reportTemplate.Execute(w, r); err != nil {
		return fmt.Errorf("scan: html report: %w", err)
	}
	return nil
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("scan: json report: %w", err)
	}
	return nil
}

// pagesText names pages by their paths, the first few of them.
func pagesText(pages []string) string {
	var names []string
	for i, p := range pages {
		if i == maxPagesNamed {
			names = append(names, fmt.Sprintf("and %d more", len(pages)-i))
			break
		}
		if u, err := url.Parse(p); err == nil && u.Path != "" {
			p = u.Path
		}
		names = append(names, p)
	}
	return strings.Join(names, ", ")
}
