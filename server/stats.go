package server

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
)

// handleStats answers the decisions per site and day, and per site over the days
// asked for, from the store's counters: as fast at fifty million records as at ten.
func (s *Server) handleStats(c echo.Context) error {
	f, err := s.filter(c, dpoToken(c))
	if err != nil {
		return err
	}
	from, err := statsDay("from", f.From)
	if err != nil {
		return err
	}
	to, err := statsDay("to", f.To)
	if err != nil {
		return err
	}
	rows, err := s.store.Stats(c.Request().Context(), f.Sites, from, to)
	if err != nil {
		return err
	}
	days := consent.Summarize(rows, f)
	for _, row := range rows {
		row.Key.Day = ""
	}
	totals := consent.Summarize(rows, f)
	return c.JSON(http.StatusOK, &api.Stats{Days: api.NewSiteStats(days), Totals: api.NewSiteStats(totals)})
}

// statsDay returns the date of t, a bound of the days counted, which must be a
// whole day: the counters count days.
func statsDay(name string, t time.Time) (string, error) {
	if t.IsZero() {
		return "", nil
	}
	if !t.Equal(t.Truncate(24 * time.Hour)) {
		return "", consent.Errorf(consent.EInvalid, "filter %s: statistics count whole days (UTC): give a date, such as 2026-11-27", name)
	}
	return t.Format(time.DateOnly), nil
}
