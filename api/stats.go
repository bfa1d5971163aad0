package api

import (
	consent "github.com/mixvoip/consentd"
)

// Stats are the decisions per site and day, and per site over the days asked for
// (GET /v1/dpo/stats).
type Stats struct {
	Days   []*SiteStats `json:"days"`
	Totals []*SiteStats `json:"totals"`
}

// SiteStats are one site's decisions, on a Day or over the days asked for (Day "").
type SiteStats struct {
	Site       string                     `json:"site"`
	Day        string                     `json:"day,omitempty"`
	Total      int64                      `json:"total"`
	Counts     map[consent.Action]int64   `json:"counts"`
	Shares     map[consent.Action]float64 `json:"shares"`
	GPCSignal  int64                      `json:"gpc_signal"`
	Categories map[string]Tally           `json:"categories"`
	Partners   map[string]Tally           `json:"partners"`
}

// Tally is how many decisions granted and denied a category or a partner.
type Tally struct {
	Granted   int64   `json:"granted"`
	Denied    int64   `json:"denied"`
	OptInRate float64 `json:"opt_in_rate"`
}

// Actions are the actions counted, each a key of SiteStats.Counts and Shares even
// when none was taken: a chart or a table has a column for each.
var Actions = []consent.Action{consent.ActionAcceptAll, consent.ActionRejectAll, consent.ActionCustom, consent.ActionWithdraw, consent.ActionGPC}

// NewSiteStats returns the documents of stats, in their order.
func NewSiteStats(stats []*consent.DayStats) []*SiteStats {
	out := make([]*SiteStats, len(stats))
	for i, d := range stats {
		s := &SiteStats{Site: d.Site, Day: d.Day, Total: d.Total, GPCSignal: d.GPC,
			Counts: map[consent.Action]int64{}, Shares: map[consent.Action]float64{},
			Categories: tallies(d.Categories), Partners: tallies(d.Partners)}
		for _, a := range Actions {
			s.Counts[a] = d.Actions[a]
			s.Shares[a] = float64(d.Actions[a]) / float64(d.Total)
		}
		out[i] = s
	}
	return out
}

func tallies(in map[string]consent.Tally) map[string]Tally {
	out := make(map[string]Tally, len(in))
	for id, t := range in {
		out[id] = Tally{Granted: t.Granted, Denied: t.Denied, OptInRate: t.OptInRate()}
	}
	return out
}
