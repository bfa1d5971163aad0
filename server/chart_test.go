package server

import (
	"math"
	"strings"
	"testing"
	"time"
)

// TestPeriodBuckets: the overview groups a range of days by day up to about three
// months, by week (from Monday) up to two years, by month beyond, with every
// bucket of the range, empty ones included.
func TestPeriodBuckets(t *testing.T) {
	tests := []struct {
		from, to    string
		period      string
		first, last string
		n           int
	}{
		{"2026-11-04", "2026-12-03", "Day", "2026-11-04", "2026-12-03", 30},
		{"2026-12-03", "2026-12-03", "Day", "2026-12-03", "2026-12-03", 1},
		{"2026-01-01", "2026-12-31", "Week from", "2025-12-29", "2026-12-28", 53},
		{"2021-12-04", "2026-12-03", "Month", "2021-12", "2026-12", 61},
	}
	for _, tt := range tests {
		t.Run(tt.from+" to "+tt.to, func(t *testing.T) {
			from, _ := time.Parse(time.DateOnly, tt.from)
			to, _ := time.Parse(time.DateOnly, tt.to)
			p := periodOf(from, to)
			got := p.buckets(from, to)
			if p.name != tt.period || len(got) != tt.n || got[0] != tt.first || got[len(got)-1] != tt.last {
				t.Errorf("%s: %d buckets %s … %s, want %s: %d, %s … %s", p.name, len(got), got[0], got[len(got)-1], tt.period, tt.n, tt.first, tt.last)
			}
			// Every day of the range falls in one of them.
			for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
				if b := p.bucket(d.Format(time.DateOnly)); !strings.Contains(strings.Join(got, " "), b) {
					t.Fatalf("%s falls in %s, which is not a bucket", d.Format(time.DateOnly), b)
				}
			}
		})
	}
}

// TestChartSVG: a stacked chart draws a bar segment per value above zero; a line
// chart breaks its line where a value is missing rather than drawing it at 0 %; the
// y axis of counts ends at a round number above the highest bar.
func TestChartSVG(t *testing.T) {
	bars := &chart{ID: "d", Title: "Decisions", Labels: []string{"a", "b", "c"}, Stacked: true,
		Series: []series{{Name: "x", Values: []float64{3, 0, 1}}, {Name: "y", Values: []float64{4, 2, 0}}}}
	svg := string(bars.SVG())
	if n := strings.Count(svg, "<rect"); n != 4 {
		t.Errorf("%d bar segments, want 4 (one per value above zero):\n%s", n, svg)
	}
	if !strings.Contains(svg, ">10</text>") || strings.Contains(svg, ">20</text>") {
		t.Errorf("the axis of bars of at most 7 should end at 10:\n%s", svg)
	}

	lines := &chart{ID: "r", Title: "Rates", Labels: []string{"a", "b", "c", "d"}, Percent: true,
		Series: []series{{Name: "p", Values: []float64{0.5, math.NaN(), 0.25, 1}}}}
	svg = string(lines.SVG())
	path := svg[strings.Index(svg, ` d="`)+4:]
	path = path[:strings.Index(path, `"`)]
	if strings.Count(path, "M") != 2 || strings.Count(path, "L") != 1 {
		t.Errorf("path %q: want a point, a gap, then a line of two", path)
	}
	if n := strings.Count(svg, "<circle"); n != 3 {
		t.Errorf("%d points, want 3", n)
	}
	if lines.Cell(0, 1) != "–" || lines.Cell(0, 2) != "25%" {
		t.Errorf("table cells %q and %q, want – for none and 25%%", lines.Cell(0, 1), lines.Cell(0, 2))
	}
}
