package server

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// The console's charts are SVG drawn here from the numbers, inline in the page:
// no script, no library, nothing fetched. Colours and line styles come from the
// console's stylesheet by class (s0, s1, ...), so that light and dark mode both
// apply; each chart's numbers are also in a table beside it, for screen readers
// and for copying.

// chart is one chart: a value per label (a day, a week or a month) for each series.
type chart struct {
	ID      string // unique in the page: the SVG's title and description are named by it
	Title   string
	Desc    string   // what the chart shows, in a sentence, for screen readers
	Labels  []string // the x axis, oldest first
	Series  []series
	Stacked bool // bars stacked per label; else a line per series
	Percent bool // values are shares from 0 to 1
}

// series is one named line or bar colour. A NaN value has no point: a day without
// any answer for a partner has no opt-in rate, which is not 0 %.
type series struct {
	Name   string
	Values []float64
}

const (
	chartWidth  = 720
	chartHeight = 260
	padLeft     = 48
	padRight    = 12
	padTop      = 12
	padBottom   = 28
	// maxPoints is how many labels get a marker on a line chart; beyond, the lines
	// alone stay readable.
	maxPoints = 62
)

// SVG draws the chart.
func (ch *chart) SVG() template.HTML {
	var b strings.Builder
	id := esc(ch.ID)
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-t %s-d">`, chartWidth, chartHeight, id, id)
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, id, esc(ch.Title), id, esc(ch.Desc))
	top := ch.top()
	plotW, plotH := float64(chartWidth-padLeft-padRight), float64(chartHeight-padTop-padBottom)
	y := func(v float64) float64 { return padTop + plotH - v/top*plotH }
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padLeft, chartWidth-padRight, y(v), y(v))
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%.1f" text-anchor="end" dy="4">%s</text>`, padLeft-6, y(v), ch.format(v))
	}
	n := len(ch.Labels)
	step := plotW / float64(max(n, 1))
	x := func(i int) float64 { return padLeft + step*(float64(i)+0.5) }
	every := max(1, (n+5)/6) // six labels at most under the axis
	for i, l := range ch.Labels {
		if i%every == 0 {
			fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x(i), chartHeight-8, esc(l))
		}
	}
	if ch.Stacked {
		ch.bars(&b, x, y, step)
	} else {
		ch.lines(&b, x, y, n)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// bars draws a stacked bar per label, one segment per series.
func (ch *chart) bars(b *strings.Builder, x func(int) float64, y func(float64) float64, step float64) {
	w := math.Max(step*0.8, 1)
	for i, label := range ch.Labels {
		base := 0.0
		for k, s := range ch.Series {
			v := s.Values[i]
			if v <= 0 || math.IsNaN(v) {
				continue
			}
			fmt.Fprintf(b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s, %s: %s</title></rect>`,
				seriesClass(k), x(i)-w/2, y(base+v), w, y(base)-y(base+v), esc(label), esc(s.Name), ch.format(v))
			base += v
		}
	}
}

// lines draws a line per series, broken where it has no value, with a marker per
// point while there are few.
func (ch *chart) lines(b *strings.Builder, x func(int) float64, y func(float64) float64, n int) {
	for k, s := range ch.Series {
		var d strings.Builder
		pen := "M"
		for i, v := range s.Values {
			if math.IsNaN(v) {
				pen = "M"
				continue
			}
			fmt.Fprintf(&d, "%s%.1f %.1f", pen, x(i), y(v))
			pen = "L"
		}
		fmt.Fprintf(b, `<path class="line %s" d="%s"/>`, seriesClass(k), d.String())
		for i, v := range s.Values {
			// A point without a neighbour is no line: it gets its marker however
			// many points there are.
			alone := (i == 0 || math.IsNaN(s.Values[i-1])) && (i == len(s.Values)-1 || math.IsNaN(s.Values[i+1]))
			if !math.IsNaN(v) && (n <= maxPoints || alone) {
				fmt.Fprintf(b, `<circle class="%s" cx="%.1f" cy="%.1f" r="3"><title>%s, %s: %s</title></circle>`,
					seriesClass(k), x(i), y(v), esc(ch.Labels[i]), esc(s.Name), ch.format(v))
			}
		}
	}
}

// top returns the value at the top of the y axis: 100 % for shares, else a round
// number above the largest bar.
func (ch *chart) top() float64 {
	if ch.Percent {
		return 1
	}
	most := 0.0
	for i := range ch.Labels {
		sum := 0.0
		for _, s := range ch.Series {
			if v := s.Values[i]; !math.IsNaN(v) {
				sum += v
			}
		}
		most = math.Max(most, sum)
	}
	return niceCeil(most)
}

// niceCeil returns the smallest of 1, 2, 2.5 or 5 times a power of ten, and at
// least 4 (one per grid line), that is not below v.
func niceCeil(v float64) float64 {
	if v <= 4 {
		return 4
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// format writes a value as the chart's axis and tooltips show it.
func (ch *chart) format(v float64) string {
	if ch.Percent {
		return fmt.Sprintf("%.0f%%", 100*v)
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// Cell returns the value of series k at label i as the chart's table shows it: "–"
// where there is none.
func (ch *chart) Cell(k, i int) string {
	if v := ch.Series[k].Values[i]; !math.IsNaN(v) {
		return ch.format(v)
	}
	return "–"
}

// seriesClass returns the class of series k: the stylesheet has eight colours, each
// with a line style of its own.
func seriesClass(k int) string { return fmt.Sprintf("s%d", k%8) }

func esc(s string) string { return template.HTMLEscapeString(s) }
