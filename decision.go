package consent

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Decision is a visitor's decision as the banner posts it (POST /v1/consents): what
// they chose, how, on which page, in answer to which banner (its fingerprint).
type Decision struct {
	Site        string  `json:"site"`
	ConsentID   string  `json:"consent_id"`
	Action      Action  `json:"action"`
	Fingerprint string  `json:"fingerprint"`
	Choices     Choices `json:"choices"`
	Language    string  `json:"language"`
	URL         string  `json:"url"`
	Surface     Surface `json:"surface"`
	GPC         bool    `json:"gpc"`
}

// Arrival is what the server knows of a decision besides what the banner posted.
type Arrival struct {
	RecordID  string     // a new UUIDv7
	At        time.Time  // when the decision arrived
	Client    netip.Addr // the visitor's address, of which only the prefix is kept; zero if unknown
	UserAgent string
}

// MaxUserAgent is the most of a user agent a record keeps: a client decides what it
// sends, and each record costs disk.
const MaxUserAgent = 512

// Validate checks d against site s, all but its choices, which are checked against
// what the visitor was shown (ValidateChoices): that may take a read of the store.
// The consent id must be a random UUID in canonical form, the action, the surface
// and the language known, and the page on one of the site's origins, or on
// otherHost where that is not "" (the demo pages' host).
func (d *Decision) Validate(s *Site, otherHost string) error {
	if !isRandomUUID(d.ConsentID) {
		return Errorf(EInvalid, "consent_id must be a random UUID (version 4) in lower-case canonical form")
	}
	if !d.Action.Valid() {
		return Errorf(EInvalid, "action %q is not one of accept_all, reject_all, custom, withdraw, gpc", d.Action)
	}
	if !d.Surface.Valid() {
		return Errorf(EInvalid, "surface %q is not one of banner, preferences, placeholder, api, browser", d.Surface)
	}
	if !slices.Contains(s.Languages, d.Language) {
		return Errorf(EInvalid, "language %q is not a language of site %s", d.Language, s.Key)
	}
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Errorf(EInvalid, "url must be the absolute http(s) URL of the page")
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	if !s.HasOrigin(origin) && (otherHost == "" || !strings.EqualFold(u.Host, otherHost)) {
		return Errorf(EInvalid, "url: %s is not one of the origins of site %s", origin, s.Key)
	}
	return nil
}

// ValidateChoices accepts only an explicit answer for every category and every
// partner the visitor was shown (the snapshot shown), and nothing else, that fits
// the action: "reject all" can never carry a grant, "accept all" never a refusal, and
// a partner is granted only with its category. A partner of site s that was not
// enabled when shown cannot be answered at all.
func (d *Decision) ValidateChoices(s *Site, shown *Snapshot) error {
	c := d.Choices
	for _, cat := range shown.Categories {
		granted, ok := c.Categories[cat.ID]
		switch {
		case !ok:
			return Errorf(EInvalid, "choices.categories.%s: missing; a decision answers every category explicitly", cat.ID)
		case cat.Required && !granted:
			return Errorf(EInvalid, "choices.categories.%s: category %q is always on and cannot be refused", cat.ID, cat.ID)
		case !cat.Required && !d.Action.fits(granted):
			return Errorf(EInvalid, "choices.categories.%s: action %s cannot set category %q to %t", cat.ID, d.Action, cat.ID, granted)
		}
	}
	if id, ok := firstUnknown(c.Categories, func(id string) bool {
		return slices.ContainsFunc(shown.Categories, func(cat Category) bool { return cat.ID == id })
	}); ok {
		return Errorf(EInvalid, "choices.categories.%s: unknown category %q", id, id)
	}
	for _, p := range shown.Partners {
		granted, ok := c.Partners[p.ID]
		switch {
		case !ok:
			return Errorf(EInvalid, "choices.partners.%s: missing; a decision answers every partner shown explicitly", p.ID)
		case !d.Action.fits(granted):
			return Errorf(EInvalid, "choices.partners.%s: action %s cannot set partner %q to %t", p.ID, d.Action, p.ID, granted)
		case granted && !c.Categories[p.Category]:
			return Errorf(EInvalid, "choices.partners.%s: partner %q is granted while its category %q is refused", p.ID, p.ID, p.Category)
		}
	}
	if id, ok := firstUnknown(c.Partners, func(id string) bool {
		return slices.ContainsFunc(shown.Partners, func(p Partner) bool { return p.ID == id })
	}); ok {
		if s.Partner(id) != nil {
			return Errorf(EInvalid, "choices.partners.%s: partner %q was not enabled on site %s in the banner answered, so the visitor was never asked about it", id, id, s.Key)
		}
		return Errorf(EInvalid, "choices.partners.%s: unknown partner %q", id, id)
	}
	return nil
}

// Record returns the record of d on site s, arrived as a says: the page without its
// query and fragment, which can carry personal data (search terms, e-mail addresses
// in links) that a proof does not need; the client's IP prefix, never its address;
// the user agent cut to MaxUserAgent; the site's policy version; and when the banner
// asks again. It checks nothing: d passed Validate and ValidateChoices.
func (d *Decision) Record(s *Site, a Arrival) *Record {
	r := &Record{
		ID:            a.RecordID,
		ConsentID:     d.ConsentID,
		Site:          s.Key,
		Action:        d.Action,
		Choices:       d.Choices,
		Fingerprint:   d.Fingerprint,
		PolicyVersion: s.Policy.Version,
		Language:      d.Language,
		Surface:       d.Surface,
		GPC:           d.GPC,
		URL:           pageURL(d.URL),
		UserAgent:     Truncate(a.UserAgent, MaxUserAgent),
		RecordedAt:    a.At,
		ExpiresAt:     a.At.Add(s.Lifetime(d.Choices)),
	}
	if r.Choices.Partners == nil {
		// A site without partners: receipts say "partners": {}, never null.
		r.Choices.Partners = map[string]bool{}
	}
	if a.Client.IsValid() {
		r.IPPrefix = TruncateIP(a.Client)
	}
	return r
}

// pageURL returns raw without query, fragment and user information.
func pageURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery, u.User = "", "", "", false, nil
	return u.String()
}

// fits reports whether an answer granted may come with action a.
func (a Action) fits(granted bool) bool {
	switch a {
	case ActionAcceptAll:
		return granted
	case ActionRejectAll, ActionGPC:
		return !granted
	}
	return true
}

// firstUnknown returns the first, in sorted order, of the keys of answers that known
// does not know: one error message, the same every time.
func firstUnknown(answers map[string]bool, known func(string) bool) (string, bool) {
	first, found := "", false
	for id := range answers {
		if !known(id) && (!found || id < first) {
			first, found = id, true
		}
	}
	return first, found
}

// isRandomUUID reports whether s is a version 4 UUID in lower-case canonical form,
// as the banner makes consent ids.
func isRandomUUID(s string) bool {
	if len(s) != 36 || s[14] != '4' {
		return false
	}
	for i := range len(s) {
		switch c := s[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			return false
		}
	}
	return true
}

// Truncate returns s cut to at most n bytes, at a character boundary: what is kept
// of a string a client chose.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
