// Package scrape reads what tests need of a /metrics answer in the Prometheus text
// format: the value of one series, the names of the series.
package scrape

import (
	"strconv"
	"strings"
)

// Value returns the value of series, a name with its labels as the Prometheus
// client writes them (sorted by name), such as
// consentd_records_total{action="reject_all",site="mixvoip.com"}; ok is false if
// text has no such series.
func Value(text, series string) (v float64, ok bool) {
	for line := range strings.Lines(text) {
		if rest, found := strings.CutPrefix(line, series+" "); found {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// Names returns the names in text: of every metric, and of every series, which
// for histograms and summaries have suffixes (_bucket, _sum, _count).
func Names(text string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.Lines(text) {
		if typ, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ := strings.Cut(typ, " ")
			names[name] = true
		} else if end := strings.IndexAny(line, "{ "); end > 0 && line[0] != '#' {
			names[line[:end]] = true
		}
	}
	return names
}
