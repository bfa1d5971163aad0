package consent

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"
)

// StatsStore keeps counters of the decisions per site, day, language and banner
// fingerprint (a StatsKey), which it updates in the transaction that stores each
// record: statistics then cost the same at any number of records. A purge leaves
// them as they are, as they hold nothing that identifies a visitor; an erasure too.
type StatsStore interface {
	// Stats returns the counters of sites (every site if empty) for the days from
	// from up to, not including, to: dates (UTC) as "2006-01-02", "" for no bound.
	Stats(ctx context.Context, sites []string, from, to string) ([]*StatsRow, error)

	// RebuildStats counts the records the store holds again and replaces every
	// counter with what it counted, while the store takes records: for a store whose
	// records came before its counters. It returns how many records it counted.
	RebuildStats(ctx context.Context) (int, error)
}

// StatsKey names one set of counters: of a site, a day (UTC, "2006-01-02"), a
// language and the fingerprint of the banner shown.
type StatsKey struct {
	Site, Day, Language, Fingerprint string
}

// StatsKeyOf returns the key of the counters that count r.
func StatsKeyOf(r *Record) StatsKey {
	return StatsKey{Site: r.Site, Day: r.RecordedAt.UTC().Format(time.DateOnly), Language: r.Language, Fingerprint: r.Fingerprint}
}

// StatsRow is the counters of one key.
type StatsRow struct {
	Key      StatsKey
	Counters Counters
}

// Counters count decisions by name, flat, so that any store adds two sets up name by
// name. The names, for each action:
//
//	ACTION                 decisions with that action
//	ACTION gpc             of those, taken with Global Privacy Control on
//	ACTION category ID +   of those, granting category ID (- denying it)
//	ACTION partner ID +    the same for partner ID
type Counters map[string]int64

// Count adds the decision r to c.
func (c Counters) Count(r *Record) {
	a := string(r.Action)
	c[a]++
	if r.GPC {
		c[a+" gpc"]++
	}
	for id, granted := range r.Choices.Categories {
		c[a+" category "+id+sign(granted)]++
	}
	for id, granted := range r.Choices.Partners {
		c[a+" partner "+id+sign(granted)]++
	}
}

func sign(granted bool) string {
	if granted {
		return " +"
	}
	return " -"
}

// Add adds o to c.
func (c Counters) Add(o Counters) {
	for name, n := range o {
		c[name] += n
	}
}

// Counts are counters by key: what a store adds to its counters in the transaction
// that stores records.
type Counts map[StatsKey]Counters

// Count adds the decision r to the counters of its key.
func (c Counts) Count(r *Record) {
	key := StatsKeyOf(r)
	if c[key] == nil {
		c[key] = Counters{}
	}
	c[key].Count(r)
}

// DayStats are the decisions of one site on one day (UTC), as the DPO sees them.
type DayStats struct {
	Site    string
	Day     string
	Total   int64
	Actions map[Action]int64
	// GPC counts the decisions taken with Global Privacy Control on, whatever
	// their action.
	GPC        int64
	Categories map[string]Tally
	Partners   map[string]Tally
}

// Tally counts the decisions that answered for one category or partner.
type Tally struct{ Granted, Denied int64 }

// OptInRate returns the share of the answers that granted, 0 without answers.
func (t Tally) OptInRate() float64 {
	if t.Granted+t.Denied == 0 {
		return 0
	}
	return float64(t.Granted) / float64(t.Granted+t.Denied)
}

// Summarize adds up rows by site and day, counting only the decisions that f's
// action, language and fingerprint select (its sites and times are the store's to
// apply), sorted by site, then day.
func Summarize(rows []*StatsRow, f Filter) []*DayStats {
	days := map[[2]string]*DayStats{}
	names := map[string]counterName{} // each name parsed once: rows share a few dozen
	for _, row := range rows {
		if (f.Language != "" && row.Key.Language != f.Language) || (f.Fingerprint != "" && row.Key.Fingerprint != f.Fingerprint) {
			continue
		}
		d := days[[2]string{row.Key.Site, row.Key.Day}]
		if d == nil {
			d = &DayStats{Site: row.Key.Site, Day: row.Key.Day, Actions: map[Action]int64{}, Categories: map[string]Tally{}, Partners: map[string]Tally{}}
			days[[2]string{row.Key.Site, row.Key.Day}] = d
		}
		for name, n := range row.Counters {
			parsed, ok := names[name]
			if !ok {
				parsed = parseCounterName(name)
				names[name] = parsed
			}
			if f.Action == "" || parsed.action == f.Action {
				d.add(parsed, n)
			}
		}
	}
	out := make([]*DayStats, 0, len(days))
	for _, d := range days {
		if d.Total > 0 {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *DayStats) int {
		return cmp.Or(strings.Compare(a.Site, b.Site), strings.Compare(a.Day, b.Day))
	})
	return out
}

// counterName is the name of a counter taken apart (see Counters).
type counterName struct {
	action Action
	what   string // "", "gpc", "category" or "partner"
	id     string // of the category or partner
	sign   string // "+" or "-"
}

func parseCounterName(name string) counterName {
	fields := strings.Fields(name)
	c := counterName{action: Action(fields[0])}
	switch len(fields) {
	case 2:
		c.what = fields[1]
	case 4:
		c.what, c.id, c.sign = fields[1], fields[2], fields[3]
	}
	return c
}

// add adds n, counted under name, to d.
func (d *DayStats) add(name counterName, n int64) {
	switch name.what {
	case "":
		d.Total += n
		d.Actions[name.action] += n
	case "gpc":
		d.GPC += n
	case "category":
		d.Categories[name.id] = d.Categories[name.id].add(name.sign, n)
	case "partner":
		d.Partners[name.id] = d.Partners[name.id].add(name.sign, n)
	}
}

func (t Tally) add(sign string, n int64) Tally {
	if sign == "+" {
		t.Granted += n
	} else {
		t.Denied += n
	}
	return t
}
