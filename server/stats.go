package server

import (
	"cmp"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
)

// dayStats are the decisions of one site on one day (UTC).
type dayStats struct {
	Site   string                     `json:"site"`
	Day    string                     `json:"day"`
	Total  int                        `json:"total"`
	Counts map[consent.Action]int     `json:"counts"`
	Shares map[consent.Action]float64 `json:"shares"`
}

var statsActions = []consent.Action{consent.ActionAcceptAll, consent.ActionRejectAll, consent.ActionCustom, consent.ActionWithdraw, consent.ActionGPC}

// handleStats counts the decisions per site and day, reading the records a page at a
// time.
func (s *Server) handleStats(c echo.Context) error {
	f, err := s.filter(c, dpoToken(c))
	if err != nil {
		return err
	}
	days := map[string]*dayStats{}
	after := ""
	for {
		page, err := s.store.Records(c.Request().Context(), f, after, exportPage)
		if err != nil {
			return err
		}
		for _, r := range page {
			day := r.RecordedAt.UTC().Format("2006-01-02")
			d := days[r.Site+" "+day]
			if d == nil {
				d = &dayStats{Site: r.Site, Day: day, Counts: map[consent.Action]int{}, Shares: map[consent.Action]float64{}}
				for _, a := range statsActions {
					d.Counts[a] = 0
				}
				days[r.Site+" "+day] = d
			}
			d.Total++
			d.Counts[r.Action]++
		}
		if len(page) < exportPage {
			break
		}
		after = page[len(page)-1].ID
	}
	out := []*dayStats{}
	for _, d := range days {
		for a, n := range d.Counts {
			d.Shares[a] = float64(n) / float64(d.Total)
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *dayStats) int {
		return cmp.Or(strings.Compare(a.Site, b.Site), strings.Compare(a.Day, b.Day))
	})
	return c.JSON(http.StatusOK, map[string]any{"days": out})
}
