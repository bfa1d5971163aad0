package scan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	consent "github.com/mixvoip/consentd"
)

const (
	// maxEvidence is how many pages a finding names; it counts the others.
	maxEvidence = 10
	// maxExamples is how many of a host's URLs the inventory keeps.
	maxExamples = 3
	// lifetimeSlack is how much longer than disclosed a cookie may live before it is
	// a finding: a tag that counts a day as 24 hours and one second is not one.
	lifetimeSlack = time.Hour
)

// Analyze returns what the visits to site's pages show against sites.yaml: the
// inventory of each state and the findings, violations first.
func Analyze(site *consent.Site, pages []string, visits []Visit) *Site {
	a := &analysis{owners: newOwners(site, visits), found: map[string]*Finding{}}
	out := &Site{Site: site.Key, Pages: pages, Visits: visits}
	for _, s := range States {
		out.Inventory = append(out.Inventory, a.inventory(s, visits))
	}
	for _, v := range visits {
		a.visit(v)
	}
	a.tags(visits)
	out.Findings = a.findings()
	return out
}

type analysis struct {
	*owners
	found map[string]*Finding
	order []string // keys of found, in the order found
}

// add records a finding, or the evidence of one found before on another page.
// Findings are the same if key is; a page is named once.
func (a *analysis) add(key string, f Finding, page, detail string) {
	old, ok := a.found[key]
	if !ok {
		old = &f
		a.found[key] = old
		a.order = append(a.order, key)
	}
	if slices.ContainsFunc(old.Evidence, func(e Evidence) bool { return e.Page == page }) {
		return
	}
	if len(old.Evidence) == maxEvidence {
		old.More++
		return
	}
	old.Evidence = append(old.Evidence, Evidence{Page: page, Detail: detail})
}

func (a *analysis) findings() []Finding {
	out := make([]Finding, 0, len(a.order))
	for _, k := range a.order {
		out = append(out, *a.found[k])
	}
	slices.SortStableFunc(out, func(x, y Finding) int {
		return cmp.Or(
			cmp.Compare(severityRank(x.Severity), severityRank(y.Severity)),
			cmp.Compare(slices.Index(States, x.State), slices.Index(States, y.State)),
			strings.Compare(string(x.Kind), string(y.Kind)),
			strings.Compare(x.Subject, y.Subject))
	})
	return out
}

func severityRank(s Severity) int {
	if s == Violation {
		return 0
	}
	return 1
}

// visit checks what one visit met against what its state allows.
func (a *analysis) visit(v Visit) {
	if v.State == NoChoice && !v.Loaded {
		a.add("not-loaded", Finding{
			Severity: Warning, Kind: NotLoaded, State: NoChoice, Subject: "page",
			Message: "The page did not load, so the scan could not check it.",
		}, v.Page, v.Error)
	}
	if v.State == NoChoice && v.Loaded && !v.Banner {
		a.add("banner", Finding{
			Severity: Violation, Kind: NoBanner, State: NoChoice, Subject: "banner",
			Message: "consentd's banner never appeared: visitors can neither refuse nor consent, nor withdraw later.",
		}, v.Page, a.bannerDetail(v))
	}
	for _, c := range v.Cookies {
		d := a.cookie(c.Name, c.Domain)
		subject := fmt.Sprintf("cookie %s (%s)", c.Name, c.Domain)
		a.check(v, subject, "Cookie "+c.Name, d.owner, cookieDetail(c, v.At, a.site))
		a.lifetime(v, c, d, subject)
	}
	for _, k := range v.Storage {
		subject := fmt.Sprintf("%sStorage key %s", k.Area, k.Key)
		a.check(v, subject, "The "+subject, a.storage(k.Key), "in "+k.Area+"Storage")
	}
	for _, r := range a.otherSites(v.Requests) {
		a.check(v, "host "+r.Host, "Host "+r.Host, a.host(r.Host), requestDetail(r))
	}
}

// check adds the finding, if any, of something met in v's state with owner o.
func (a *analysis) check(v Visit, subject, what string, o Owner, detail string) {
	if o.Allowed(v.State) {
		return
	}
	f := Finding{Severity: Violation, Kind: Undeclared, State: v.State, Subject: subject, Partner: o.Partner}
	switch {
	case v.State != Accepted:
		f.Kind = NonEssential
		when := "before any choice"
		if v.State == Rejected {
			when = "after “Reject all”"
		}
		f.Message = fmt.Sprintf("%s is used %s, but %s.", what, when, a.whose(o))
	case o.Kind == KindDisabled:
		f.Message = fmt.Sprintf("%s is used after “Accept all”, but %s.", what, a.whose(o))
	default:
		f.Message = fmt.Sprintf("%s is used after “Accept all”, but no partner declares it in sites.yaml: visitors are not told of it, so their consent does not cover it.", what)
	}
	a.add(string(f.Kind)+"|"+string(f.State)+"|"+subject, f, v.Page, detail)
}

// whose says why what o owns needs consent.
func (a *analysis) whose(o Owner) string {
	switch o.Kind {
	case KindPartner:
		p := a.site.Partner(o.Partner)
		return fmt.Sprintf("it belongs to %s, which needs consent to %s", p.Name, categoryName(a.site, p.Category))
	case KindDisabled:
		p := a.site.Partner(o.Partner)
		return fmt.Sprintf("it belongs to %s, which is not enabled on this site: visitors are not asked about it", p.Name)
	}
	return "sites.yaml does not declare it as technical, and no partner declares it"
}

// lifetime adds a finding if cookie c lives longer than its declaration d says.
func (a *analysis) lifetime(v Visit, c Cookie, d declared, subject string) {
	if d.cookie == nil {
		return
	}
	told, err := d.cookie.MaxAge()
	if err != nil {
		return // config.Load refuses such a lifetime
	}
	lives := c.lifetime(v.At)
	if c.Session || lives <= told+lifetimeSlack {
		return
	}
	a.add(string(LongerLifetime)+"|"+subject, Finding{
		Severity: Violation, Kind: LongerLifetime, State: v.State, Subject: subject, Partner: d.owner.Partner,
		Message: fmt.Sprintf("Cookie %s lives %s, but sites.yaml tells visitors %q.", c.Name, formatLifetime(lives), d.cookie.Lifetime),
	}, v.Page, cookieDetail(c, v.At, a.site))
}

// tags adds a warning for each enabled partner whose tags did not all load on a
// page where "Accept all" was chosen.
func (a *analysis) tags(visits []Visit) {
	for i := range a.site.Partners {
		p := &a.site.Partners[i]
		if !p.Enabled {
			continue
		}
		for _, v := range visits {
			if v.State != Accepted || !v.Banner {
				continue
			}
			for _, t := range p.Tags {
				if t.Src == "" {
					continue
				}
				detail, ok := tagDetail(v, t.Src)
				if ok {
					continue
				}
				a.add(string(BrokenTag)+"|"+p.ID, Finding{
					Severity: Warning, Kind: BrokenTag, State: Accepted, Subject: "partner " + p.ID, Partner: p.ID,
					Message: fmt.Sprintf("%s is enabled in sites.yaml, but its tag did not load after “Accept all”: it records nothing.", p.Name),
				}, v.Page, detail)
			}
		}
	}
}

// tagDetail says what became of the request for a tag's src in v, and whether it
// loaded.
func tagDetail(v Visit, src string) (string, bool) {
	detail := src + ": never requested"
	for _, r := range v.Requests {
		if r.URL != src {
			continue
		}
		if r.OK() {
			return "", true
		}
		detail = requestDetail(r)
	}
	return detail, false
}

func (a *analysis) bannerDetail(v Visit) string {
	script := "/v1/banner/" + a.site.Key + ".js"
	switch {
	case v.Error != "":
		return v.Error
	case v.BannerScript == "":
		return "the page loads no script " + script
	}
	for _, r := range v.Requests {
		if r.URL == v.BannerScript && !r.OK() {
			return requestDetail(r)
		}
	}
	return "the page loaded " + v.BannerScript + ", but no banner appeared"
}

func categoryName(site *consent.Site, id string) string {
	if c := site.Category(id); c != nil {
		if name := c.Name["en"]; name != "" {
			return name
		}
	}
	return id
}

// inventory returns what the visits in state s met.
func (a *analysis) inventory(s State, visits []Visit) Inventory {
	inv := Inventory{State: s, Cookies: []CookieItem{}, Storage: []StorageItem{}, Hosts: []HostItem{}}
	for _, v := range visits {
		if v.State != s {
			continue
		}
		for _, c := range v.Cookies {
			i := slices.IndexFunc(inv.Cookies, func(x CookieItem) bool { return x.Name == c.Name && x.Domain == c.Domain })
			if i < 0 {
				party := PartyThird
				if FirstParty(a.site, c.Domain) {
					party = PartyFirst
				}
				inv.Cookies = append(inv.Cookies, CookieItem{Name: c.Name, Domain: c.Domain, Party: party, Session: c.Session, Owner: a.cookie(c.Name, c.Domain).owner})
				i = len(inv.Cookies) - 1
			}
			item := &inv.Cookies[i]
			item.Lifetime = max(item.Lifetime, Seconds(c.lifetime(v.At)))
			item.Pages = addPage(item.Pages, v.Page)
		}
		for _, k := range v.Storage {
			i := slices.IndexFunc(inv.Storage, func(x StorageItem) bool { return x.Area == k.Area && x.Key == k.Key })
			if i < 0 {
				inv.Storage = append(inv.Storage, StorageItem{Area: k.Area, Key: k.Key, Owner: a.storage(k.Key)})
				i = len(inv.Storage) - 1
			}
			inv.Storage[i].Pages = addPage(inv.Storage[i].Pages, v.Page)
		}
		for _, r := range a.otherSites(v.Requests) {
			i := slices.IndexFunc(inv.Hosts, func(x HostItem) bool { return x.Host == r.Host })
			if i < 0 {
				inv.Hosts = append(inv.Hosts, HostItem{Host: r.Host, Owner: a.host(r.Host), Examples: []string{}})
				i = len(inv.Hosts) - 1
			}
			h := &inv.Hosts[i]
			h.Requests++
			if len(h.Examples) < maxExamples && !slices.Contains(h.Examples, r.URL) {
				h.Examples = append(h.Examples, r.URL)
			}
			h.Pages = addPage(h.Pages, v.Page)
		}
	}
	slices.SortFunc(inv.Cookies, func(x, y CookieItem) int {
		return cmp.Or(strings.Compare(x.Name, y.Name), strings.Compare(x.Domain, y.Domain))
	})
	slices.SortFunc(inv.Storage, func(x, y StorageItem) int {
		return cmp.Or(strings.Compare(x.Area, y.Area), strings.Compare(x.Key, y.Key))
	})
	slices.SortFunc(inv.Hosts, func(x, y HostItem) int { return strings.Compare(x.Host, y.Host) })
	return inv
}

// otherSites returns the requests to hosts of other sites: a visit also holds the
// site's own requests for the banner's script and partners' tags.
func (a *analysis) otherSites(requests []Request) []Request {
	var out []Request
	for _, r := range requests {
		if !FirstParty(a.site, r.Host) {
			out = append(out, r)
		}
	}
	return out
}

func addPage(pages []string, page string) []string {
	if slices.Contains(pages, page) {
		return pages
	}
	return append(pages, page)
}

func cookieDetail(c Cookie, at time.Time, site *consent.Site) string {
	party := "third-party"
	if FirstParty(site, c.Domain) {
		party = "first-party"
	}
	if c.Session {
		return fmt.Sprintf("%s, %s, until the browser closes", c.Domain, party)
	}
	return fmt.Sprintf("%s, %s, expires %s (in %s)", c.Domain, party, c.Expires.UTC().Format(time.DateOnly), formatLifetime(c.lifetime(at)))
}

func requestDetail(r Request) string {
	var outcome []string
	if r.Status != 0 {
		outcome = append(outcome, fmt.Sprintf("HTTP %d", r.Status))
	}
	if r.Failed != "" {
		outcome = append(outcome, "failed: "+r.Failed)
	}
	what := cmp.Or(strings.Join(outcome, ", "), "no response")
	s := fmt.Sprintf("%s (%s, %s)", r.URL, strings.ToLower(r.Type), what)
	if r.Initiator != "" {
		s += ", from " + r.Initiator
	}
	return s
}

// formatLifetime says d in the unit a disclosure would use, rounded.
func formatLifetime(d time.Duration) string {
	const day = 24 * time.Hour
	unit := func(n float64, name string) string {
		r := int(n + 0.5)
		if r == 1 {
			return "1 " + name
		}
		return fmt.Sprintf("%d %ss", r, name)
	}
	switch {
	case d < time.Hour:
		return unit(d.Minutes(), "minute")
	case d < 2*day:
		return unit(d.Hours(), "hour")
	case d < 60*day:
		return unit(d.Hours()/24, "day")
	case d < 730*day:
		return unit(d.Hours()/24/30.44, "month")
	}
	return unit(d.Hours()/24/365.25, "year")
}
