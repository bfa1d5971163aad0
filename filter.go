package consent

import (
	"slices"
	"time"
)

// Filter selects records for the DPO: each field set narrows the selection.
type Filter struct {
	Sites       []string // any of these; all if empty
	From, To    time.Time
	Action      Action
	Fingerprint string
	Language    string
}

// Match reports whether r is selected by f. From is inclusive, To exclusive.
func (f *Filter) Match(r *Record) bool {
	return (len(f.Sites) == 0 || slices.Contains(f.Sites, r.Site)) &&
		(f.From.IsZero() || !r.RecordedAt.Before(f.From)) &&
		(f.To.IsZero() || r.RecordedAt.Before(f.To)) &&
		(f.Action == "" || r.Action == f.Action) &&
		(f.Fingerprint == "" || r.Fingerprint == f.Fingerprint) &&
		(f.Language == "" || r.Language == f.Language)
}
