package consent_test

import (
	"reflect"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
)

// TestSummarize: counters add up by site and day; the action, language and banner
// of a filter count only their decisions; opt-in rates follow from the answers.
func TestSummarize(t *testing.T) {
	day := time.Date(2026, 3, 1, 23, 59, 0, 0, time.UTC)
	record := func(action consent.Action, language string, gpc, analytics bool) *consent.Record {
		return &consent.Record{Site: "a.example", RecordedAt: day, Action: action, Language: language, Fingerprint: "f1", GPC: gpc,
			Choices: consent.Choices{Categories: map[string]bool{"analytics": analytics}, Partners: map[string]bool{"meta": analytics}}}
	}
	counts := consent.Counts{}
	for _, r := range []*consent.Record{
		record(consent.ActionAcceptAll, "en", false, true),
		record(consent.ActionAcceptAll, "de", false, true),
		record(consent.ActionRejectAll, "en", false, false),
		record(consent.ActionGPC, "en", true, false),
	} {
		counts.Count(r)
	}
	var rows []*consent.StatsRow
	for k, c := range counts {
		rows = append(rows, &consent.StatsRow{Key: k, Counters: c})
	}
	tests := []struct {
		name string
		f    consent.Filter
		want *consent.DayStats
	}{
		{"all", consent.Filter{}, &consent.DayStats{Site: "a.example", Day: "2026-03-01", Total: 4,
			Actions:    map[consent.Action]int64{consent.ActionAcceptAll: 2, consent.ActionRejectAll: 1, consent.ActionGPC: 1},
			GPC:        1,
			Categories: map[string]consent.Tally{"analytics": {Granted: 2, Denied: 2}},
			Partners:   map[string]consent.Tally{"meta": {Granted: 2, Denied: 2}}}},
		{"one language", consent.Filter{Language: "en"}, &consent.DayStats{Site: "a.example", Day: "2026-03-01", Total: 3,
			Actions:    map[consent.Action]int64{consent.ActionAcceptAll: 1, consent.ActionRejectAll: 1, consent.ActionGPC: 1},
			GPC:        1,
			Categories: map[string]consent.Tally{"analytics": {Granted: 1, Denied: 2}},
			Partners:   map[string]consent.Tally{"meta": {Granted: 1, Denied: 2}}}},
		{"one action", consent.Filter{Action: consent.ActionAcceptAll}, &consent.DayStats{Site: "a.example", Day: "2026-03-01", Total: 2,
			Actions:    map[consent.Action]int64{consent.ActionAcceptAll: 2},
			Categories: map[string]consent.Tally{"analytics": {Granted: 2}},
			Partners:   map[string]consent.Tally{"meta": {Granted: 2}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := consent.Summarize(rows, tt.f)
			if len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
				t.Errorf("Summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
	if got := consent.Summarize(rows, consent.Filter{Fingerprint: "other"}); len(got) != 0 {
		t.Errorf("another banner's stats: %+v, want none", got)
	}
	if rate := (consent.Tally{Granted: 1, Denied: 3}).OptInRate(); rate != 0.25 {
		t.Errorf("OptInRate = %v, want 0.25", rate)
	}
}
