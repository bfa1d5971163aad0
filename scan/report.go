package scan

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// Report is one scan of one or more sites.
type Report struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Version  string    `json:"version"`           // consentd's
	Browser  string    `json:"browser,omitempty"` // the browser's product and version
	Config   string    `json:"config"`            // the sites.yaml measured against
	Limits   Limits    `json:"limits"`
	Sites    []*Site   `json:"sites"`
}

// Limits are what a scan was allowed to do.
type Limits struct {
	Pages int     `json:"pages"`        // pages per site besides the start page
	Time  Seconds `json:"time_seconds"` // the whole scan's
	// Quiet is how long a page had to make no request before it was recorded.
	Quiet Seconds `json:"quiet_seconds"`
}

// Site is what the scan of one site found.
type Site struct {
	Site  string   `json:"site"`
	Pages []string `json:"pages"` // the pages visited, the start page first
	// Incomplete says what the scan could not do, such as pages left out at the
	// time limit; "" if it did everything.
	Incomplete string    `json:"incomplete,omitempty"`
	Findings   []Finding `json:"findings"` // violations first
	// Inventory is what was met in each state, in the order of States.
	Inventory []Inventory `json:"inventory"`
	Visits    []Visit     `json:"visits"` // the observations the rest is made from
}

// Inventory is everything met in one state, over every page.
type Inventory struct {
	State   State         `json:"state"`
	Cookies []CookieItem  `json:"cookies"`
	Storage []StorageItem `json:"storage"`
	Hosts   []HostItem    `json:"hosts"`
}

// Owner is whom sites.yaml says a cookie, storage key or host belongs to.
type Owner struct {
	Kind    OwnerKind `json:"kind"`
	Partner string    `json:"partner,omitempty"` // the partner's id, for KindPartner and KindDisabled
	Name    string    `json:"name,omitempty"`    // the partner's name
}

// String says who o is, as the report shows it.
func (o Owner) String() string {
	switch o.Kind {
	case KindConsentd:
		return "consentd"
	case KindTechnical:
		return "technical (the site's own)"
	case KindPartner:
		return o.Name
	case KindDisabled:
		return o.Name + " (not enabled)"
	}
	return "undeclared"
}

// OwnerKind is what sites.yaml says of a cookie, storage key or host.
type OwnerKind string

const (
	KindConsentd   OwnerKind = "consentd"   // the consent cookie, the banner's host
	KindTechnical  OwnerKind = "technical"  // declared under the site's technical:
	KindPartner    OwnerKind = "partner"    // declared by a partner enabled on the site
	KindDisabled   OwnerKind = "disabled"   // declared by a partner not enabled on the site
	KindUndeclared OwnerKind = "undeclared" // declared by no one
)

// Allowed reports whether what o owns may be used in state s: before a choice and
// after a refusal only consentd's and the site's technical ones, after "Accept all"
// also what the enabled partners declare.
func (o Owner) Allowed(s State) bool {
	if s == Accepted {
		return o.Kind != KindUndeclared && o.Kind != KindDisabled
	}
	return o.Kind == KindConsentd || o.Kind == KindTechnical
}

// CookieItem is a cookie met in a state.
type CookieItem struct {
	Name   string `json:"name"`
	Domain string `json:"domain"`
	Party  Party  `json:"party"`
	// Lifetime is the longest seen from a visit to its expiry; 0 with Session.
	Lifetime Seconds  `json:"lifetime_seconds"`
	Session  bool     `json:"session"`
	Owner    Owner    `json:"owner"`
	Pages    []string `json:"pages"`
}

// StorageItem is a localStorage or sessionStorage key met in a state.
type StorageItem struct {
	Area  string   `json:"area"`
	Key   string   `json:"key"`
	Owner Owner    `json:"owner"`
	Pages []string `json:"pages"`
}

// HostItem is a host of another site contacted in a state.
type HostItem struct {
	Host     string   `json:"host"`
	Owner    Owner    `json:"owner"`
	Requests int      `json:"requests"`
	Examples []string `json:"examples"` // a few of the URLs requested
	Pages    []string `json:"pages"`
}

// Party is whether a cookie belongs to the site (first) or to another site (third).
type Party string

const (
	PartyFirst Party = "first"
	PartyThird Party = "third"
)

// Finding is one way a site breaks what sites.yaml, and so the privacy policy,
// says, with its evidence.
type Finding struct {
	Severity Severity `json:"severity"`
	Kind     Kind     `json:"kind"`
	State    State    `json:"state"`
	Subject  string   `json:"subject"`           // "cookie _ga (.example.com)", "host www.googletagmanager.com"
	Partner  string   `json:"partner,omitempty"` // whose it is, if sites.yaml says
	Message  string   `json:"message"`           // one sentence for the DPO
	// Evidence are the pages it was seen on, with what was seen there; at most
	// maxEvidence, and More counts the pages left out.
	Evidence []Evidence `json:"evidence"`
	More     int        `json:"more,omitempty"`
}

// Evidence is what was seen on one page.
type Evidence struct {
	Page   string `json:"page"`
	Detail string `json:"detail"`
}

// Severity is how much a finding matters: a violation fails the scan.
type Severity string

const (
	Violation Severity = "violation"
	Warning   Severity = "warning"
)

// Kind is what a finding is about.
type Kind string

const (
	// NonEssential: a cookie, storage key or request that needs consent, before a
	// choice or after a refusal.
	NonEssential Kind = "non-essential"
	// Undeclared: after "Accept all", something no enabled partner declares; the
	// visitor's consent does not cover it.
	Undeclared Kind = "undeclared"
	// LongerLifetime: a cookie that lives longer than sites.yaml tells visitors.
	LongerLifetime Kind = "longer-lifetime"
	// BrokenTag: an enabled partner whose tag did not load after "Accept all".
	BrokenTag Kind = "broken-tag"
	// NoBanner: a page on which consentd's banner never appeared.
	NoBanner Kind = "no-banner"
	// NotLoaded: a page that did not load (an error status, a timeout): nothing
	// about it was checked.
	NotLoaded Kind = "not-loaded"
)

// Counts returns the numbers of violations and warnings in r.
func (r *Report) Counts() (violations, warnings int) {
	for _, s := range r.Sites {
		v, w := s.Counts()
		violations += v
		warnings += w
	}
	return violations, warnings
}

// Counts returns the numbers of violations and warnings of s.
func (s *Site) Counts() (violations, warnings int) {
	for _, f := range s.Findings {
		if f.Severity == Violation {
			violations++
		} else {
			warnings++
		}
	}
	return violations, warnings
}

// Only returns r with only the given sites, for someone who may see no others.
func (r *Report) Only(sites []string) *Report {
	out := *r
	out.Sites = nil
	for _, s := range r.Sites {
		if slices.Contains(sites, s.Site) {
			out.Sites = append(out.Sites, s)
		}
	}
	return &out
}

// SiteKeys returns the sites of r, in its order.
func (r *Report) SiteKeys() []string {
	keys := make([]string, len(r.Sites))
	for i, s := range r.Sites {
		keys[i] = s.Site
	}
	return keys
}

// Seconds is a duration that JSON holds as whole seconds.
type Seconds time.Duration

func (s Seconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, int64(time.Duration(s)/time.Second), 10), nil
}

func (s *Seconds) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = Seconds(time.Duration(n) * time.Second)
	return nil
}
