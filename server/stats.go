package server

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
)

// statsJSON is one site's decisions, on a day or over the days asked for, as GET
// /v1/dpo/stats answers them.
type statsJSON struct {
	Site       string                     `json:"site"`
	Day        string                     `json:"day,omitempty"`
	Total      int64                      `json:"total"`
	Counts     map[consent.Action]int64   `json:"counts"`
	Shares     map[consent.Action]float64 `json:"shares"`
	GPCSignal  int64                      `json:"gpc_signal"`
	Categories map[string]tallyJSON       `json:"categories"`
	Partners   map[string]tallyJSON       `json:"partners"`
}

type tallyJSON struct {
	Granted   int64   `json:"granted"`
	Denied    int64   `json:"denied"`
	OptInRate float64 `json:"opt_in_rate"`
}

var statsActions = []consent.Action{consent.ActionAcceptAll, consent.ActionRejectAll, consent.ActionCustom, consent.ActionWithdraw, consent.ActionGPC}

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
	return c.JSON(http.StatusOK, map[string][]*statsJSON{"days": toStatsJSON(days), "totals": toStatsJSON(totals)})
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

func toStatsJSON(stats []*consent.DayStats) []*statsJSON {
	out := make([]*statsJSON, len(stats))
	for i, d := range stats {
		j := &statsJSON{Site: d.Site, Day: d.Day, Total: d.Total, GPCSignal: d.GPC,
			Counts: map[consent.Action]int64{}, Shares: map[consent.Action]float64{},
			Categories: tallies(d.Categories), Partners: tallies(d.Partners)}
		for _, a := range statsActions {
			j.Counts[a] = d.Actions[a]
			j.Shares[a] = float64(d.Actions[a]) / float64(d.Total)
		}
		out[i] = j
	}
	return out
}

func tallies(in map[string]consent.Tally) map[string]tallyJSON {
	out := make(map[string]tallyJSON, len(in))
	for id, t := range in {
		out[id] = tallyJSON{Granted: t.Granted, Denied: t.Denied, OptInRate: t.OptInRate()}
	}
	return out
}
