package server

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"html/template"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
	"github.com/mixvoip/consentd/auth"
)

// consoleFuncs are the helpers the console's templates use.
var consoleFuncs = template.FuncMap{
	"join":         func(list []string) string { return strings.Join(list, ", ") },
	"when":         func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"sub":          func(a, b int) int { return a - b },
	"seriesClass":  seriesClass,
	"sessionHours": func() int { return int(sessionLifetime / time.Hour) },
	"root":         func(cp *consent.Checkpoint) string { return base64.StdEncoding.EncodeToString(cp.Root[:]) },
	"choices":      consent.AnswerList,
}

// visibleSites returns the sites served that token may see, in order.
func (s *Server) visibleSites(token *auth.Token) []string {
	var sites []string
	for key := range *s.sites.Load() {
		if token.MaySee(key) {
			sites = append(sites, key)
		}
	}
	slices.Sort(sites)
	return sites
}

// overviewData is what the overview shows: one site's decisions, or all sites'
// together, over a range of days.
type overviewData struct {
	Sites    []string // to choose from
	Site     string   // chosen; "" for all of Sites
	From, To string   // dates, both included
	Period   string   // what a bar or point stands for: Day, Week from, Month
	Total    int64
	Shares   []share
	Charts   []*chart
}

// share is one figure of the overview's tiles.
type share struct {
	Name  string
	Count int64
	Share string
}

// actionNames are the actions as the console names them.
var actionNames = map[consent.Action]string{
	consent.ActionAcceptAll: "Accept all", consent.ActionRejectAll: "Reject all", consent.ActionCustom: "Own choice",
	consent.ActionWithdraw: "Withdrawal", consent.ActionGPC: "Refused by GPC",
}

const (
	defaultOverviewDays = 30
	maxOverviewYears    = 10
)

func (s *Server) handleOverview(c echo.Context) error {
	token := dpoToken(c)
	d := &overviewData{Sites: s.visibleSites(token), Site: c.QueryParam("site"), From: c.QueryParam("from"), To: c.QueryParam("to")}
	page := &consolePage{Title: "Overview", Nav: "overview", Data: d}
	if d.Site != "" && !slices.Contains(d.Sites, d.Site) {
		return consent.Errorf(consent.EForbidden, "no site %s among those of token %q", d.Site, token.Name)
	}
	if d.Site == "" && len(d.Sites) == 1 {
		d.Site = d.Sites[0]
	}
	today := s.opts.Now().UTC().Truncate(24 * time.Hour)
	to, err := dateParam(c, "to", today)
	if err != nil {
		return s.renderProblem(c, err, "overview", page)
	}
	from, err := dateParam(c, "from", to.AddDate(0, 0, 1-defaultOverviewDays))
	if err != nil {
		return s.renderProblem(c, err, "overview", page)
	}
	// Days to come have no decisions yet, and ten years of months are 120 bars.
	if to.After(today) {
		to = today
	}
	switch {
	case from.After(to):
		return s.renderProblem(c, consent.Errorf(consent.EInvalid, "The range starts (%s) after it ends (%s).", from.Format(time.DateOnly), to.Format(time.DateOnly)), "overview", page)
	case from.Before(to.AddDate(-maxOverviewYears, 0, 0)):
		return s.renderProblem(c, consent.Errorf(consent.EInvalid, "Choose at most %d years.", maxOverviewYears), "overview", page)
	}
	d.From, d.To = from.Format(time.DateOnly), to.Format(time.DateOnly)
	sites := d.Sites
	if d.Site != "" {
		sites = []string{d.Site}
	}
	if len(sites) == 0 {
		return s.render(c, http.StatusOK, "overview", page)
	}
	rows, err := s.store.Stats(c.Request().Context(), sites, d.From, to.AddDate(0, 0, 1).Format(time.DateOnly))
	if err != nil {
		return err
	}
	period := periodOf(from, to)
	d.Period = period.name
	for _, row := range rows {
		row.Key.Site = "" // the sites chosen, together
		row.Key.Day = period.bucket(row.Key.Day)
	}
	byBucket := map[string]*consent.DayStats{}
	total := &consent.DayStats{Actions: map[consent.Action]int64{}}
	for _, day := range consent.Summarize(rows, consent.Filter{}) {
		byBucket[day.Day] = day
		total.Total += day.Total
		total.GPC += day.GPC
		for a, n := range day.Actions {
			total.Actions[a] += n
		}
	}
	d.Total = total.Total
	for _, a := range api.Actions {
		d.Shares = append(d.Shares, newShare(actionNames[a], total.Actions[a], total.Total))
	}
	d.Shares = append(d.Shares, newShare("With GPC on", total.GPC, total.Total))
	labels := period.buckets(from, to)
	names, alwaysOn := s.names(sites)
	d.Charts = []*chart{
		decisionsChart(labels, byBucket, period),
		optInChart("categories", "Opt-in rate per purpose", "category", labels, byBucket, names, alwaysOn, func(ds *consent.DayStats) map[string]consent.Tally { return ds.Categories }),
		optInChart("partners", "Opt-in rate per partner", "partner", labels, byBucket, names, nil, func(ds *consent.DayStats) map[string]consent.Tally { return ds.Partners }),
	}
	return s.render(c, http.StatusOK, "overview", page)
}

func newShare(name string, n, total int64) share {
	sh := share{Name: name, Count: n, Share: "–"}
	if total > 0 {
		sh.Share = fmt.Sprintf("%.1f %%", 100*float64(n)/float64(total))
	}
	return sh
}

// dateParam reads the query parameter name as a date, def if it is not given.
func dateParam(c echo.Context, name string, def time.Time) (time.Time, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return t, consent.Errorf(consent.EInvalid, "%s: %q is not a date such as 2026-11-27.", name, v)
	}
	return t, nil
}

// period is how the overview groups days: by day for a few months, by week for
// up to two years, by month beyond, so that a chart has at most about a hundred
// bars whatever the range.
type period struct {
	name   string
	bucket func(day string) string     // the bucket of a date
	start  func(t time.Time) time.Time // the first day of t's bucket
	next   func(t time.Time) time.Time // the first day of the next bucket, from a first day
}

var (
	byDay = period{name: "Day", bucket: func(day string) string { return day },
		start: func(t time.Time) time.Time { return t }, next: func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }}
	byWeek = period{name: "Week from", bucket: weekOf,
		start: monday, next: func(t time.Time) time.Time { return t.AddDate(0, 0, 7) }}
	byMonth = period{name: "Month", bucket: func(day string) string { return day[:7] },
		start: func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC) },
		next:  func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }}
)

func periodOf(from, to time.Time) period {
	switch days := to.Sub(from).Hours() / 24; {
	case days <= 92:
		return byDay
	case days <= 731:
		return byWeek
	}
	return byMonth
}

// weekOf returns the Monday of the week of day, a date the store's counters name.
func weekOf(day string) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return day
	}
	return monday(t).Format(time.DateOnly)
}

func monday(t time.Time) time.Time { return t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7)) }

// buckets returns every bucket from from to to, in order, empty ones included.
func (p period) buckets(from, to time.Time) []string {
	var out []string
	for t := p.start(from); !t.After(to); t = p.next(t) {
		out = append(out, p.bucket(t.Format(time.DateOnly)))
	}
	return out
}

func decisionsChart(labels []string, byBucket map[string]*consent.DayStats, p period) *chart {
	ch := &chart{ID: "decisions", Title: "Decisions per " + strings.ToLower(strings.TrimSuffix(p.name, " from")), Labels: labels, Stacked: true,
		Desc: "Stacked bars: how many visitors accepted all, rejected all, made their own choice, withdrew, or refused by Global Privacy Control, per " + strings.ToLower(strings.TrimSuffix(p.name, " from")) + "."}
	for _, a := range api.Actions {
		se := series{Name: actionNames[a], Values: make([]float64, len(labels))}
		for i, l := range labels {
			if day := byBucket[l]; day != nil {
				se.Values[i] = float64(day.Actions[a])
			}
		}
		ch.Series = append(ch.Series, se)
	}
	return ch
}

// optInChart draws the opt-in rate of each category or partner (kind) that
// tallies gives of a bucket, but those in skip, named as names says.
func optInChart(id, title, kind string, labels []string, byBucket map[string]*consent.DayStats, names map[string]string, skip map[string]bool, tallies func(*consent.DayStats) map[string]consent.Tally) *chart {
	ch := &chart{ID: id, Title: title, Labels: labels, Percent: true,
		Desc: "Lines: the share of the decisions that granted each one, of those that answered for it. A gap is a time without an answer."}
	ids := map[string]bool{}
	for _, day := range byBucket {
		for k := range tallies(day) {
			ids[k] = !skip[k]
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ids)) {
		if !ids[k] {
			continue
		}
		se := series{Name: cmp.Or(names[kind+" "+k], k), Values: make([]float64, len(labels))}
		for i, l := range labels {
			se.Values[i] = math.NaN()
			if day := byBucket[l]; day != nil {
				if t, ok := tallies(day)[k]; ok && t.Granted+t.Denied > 0 {
					se.Values[i] = t.OptInRate()
				}
			}
		}
		ch.Series = append(ch.Series, se)
	}
	return ch
}

// names returns the English names of the categories and partners of sites as
// served now, by id ("category ID" or "partner ID"), and the categories that no
// visitor of those sites may refuse: always at 100 %, not worth a line.
func (s *Server) names(sites []string) (names map[string]string, alwaysOn map[string]bool) {
	names, alwaysOn = map[string]string{}, map[string]bool{}
	for _, key := range sites {
		st := s.servedSite(key)
		if st == nil {
			continue
		}
		for _, cat := range st.Categories {
			names["category "+cat.ID] = textIn(cat.Name, "en")
			if on, seen := alwaysOn[cat.ID]; !seen || on {
				alwaysOn[cat.ID] = cat.Required
			}
		}
		for _, p := range st.Partners {
			names["partner "+p.ID] = p.Name
		}
	}
	return names, alwaysOn
}

// textIn returns t in lang, else in English, else in any language it has.
func textIn(t consent.Text, lang string) string {
	for _, l := range []string{lang, "en"} {
		if v, ok := t[l]; ok {
			return v
		}
	}
	for _, l := range slices.Sorted(maps.Keys(t)) {
		return t[l]
	}
	return ""
}

// proofData is what the proof lookup shows.
type proofData struct {
	ConsentID string
	Proof     *api.Proof
	Invalid   int
	Shown     []*shownBanner
}

// shownBanner is a snapshot as the banner showed it in one language.
type shownBanner struct {
	Snapshot   *consent.Snapshot
	Lang       string
	T          map[string]string
	Body       string
	Categories []shownItem
	Partners   []shownItem
}

type shownItem struct {
	Name, Note, Description    string
	Provider, Purpose, Details string
}

func (s *Server) handleProofPage(c echo.Context) error {
	d := &proofData{ConsentID: strings.TrimSpace(c.QueryParam("consent_id"))}
	page := &consolePage{Title: "Proof lookup", Nav: "proof", Data: d}
	if d.ConsentID == "" {
		return s.render(c, http.StatusOK, "proof", page)
	}
	p, err := s.consoleProof(c, d.ConsentID)
	if err != nil {
		return s.renderProblem(c, err, "proof", page)
	}
	d.Proof = p
	for _, r := range p.Records {
		if !r.ReceiptValid {
			d.Invalid++
		}
	}
	d.Shown = shownBanners(p)
	return s.render(c, http.StatusOK, "proof", page)
}

// consoleProof returns the proof of the consent id typed into a form; an error
// with code EInvalid or ENotFound says what to tell the DPO instead.
func (s *Server) consoleProof(c echo.Context, typed string) (*api.Proof, error) {
	token := dpoToken(c)
	id, err := parseConsentID(typed, "consent id")
	if err != nil {
		return nil, consent.Errorf(consent.EInvalid, "%q is not a consent id: a consent id has 36 characters, such as 0190a4c2-7f3e-7cc1-9b8e-3f1d2a4b5c6d.", typed)
	}
	p, err := s.proofOf(c.Request().Context(), token, id)
	switch {
	case consent.ErrorCode(err) == consent.ENotFound && len(token.Sites) > 0:
		return nil, consent.Errorf(consent.ENotFound, "No decision is recorded for consent id %s on %s.", id, strings.Join(token.Sites, ", "))
	case consent.ErrorCode(err) == consent.ENotFound:
		return nil, consent.Errorf(consent.ENotFound, "No decision is recorded for consent id %s.", id)
	}
	return p, err
}

// renderProblem shows page name with what err says, when it is the DPO's to fix
// (a 4xx); any other error is the server's, answered and logged as such.
func (s *Server) renderProblem(c echo.Context, err error, name string, page *consolePage) error {
	status, _, msg := describe(err)
	if status >= 500 {
		return err
	}
	page.Error = msg
	return s.render(c, status, name, page)
}

// shownBanners returns each snapshot of p in each language its records were
// decided in.
func shownBanners(p *api.Proof) []*shownBanner {
	var out []*shownBanner
	for _, snap := range p.Snapshots {
		var langs []string
		for _, r := range p.Records {
			if r.Site == snap.Site && r.Fingerprint == snap.Fingerprint && !slices.Contains(langs, r.Language) {
				langs = append(langs, r.Language)
			}
		}
		for _, lang := range langs {
			out = append(out, newShownBanner(snap, lang))
		}
	}
	return out
}

func newShownBanner(snap *consent.Snapshot, lang string) *shownBanner {
	texts, ok := snap.Texts[lang]
	if !ok && len(snap.Languages) > 0 {
		lang = snap.Languages[0]
		texts = snap.Texts[lang]
	}
	b := &shownBanner{Snapshot: snap, Lang: lang, T: texts, Body: strings.ReplaceAll(texts["body"], "{controller}", snap.Controller.Name)}
	for _, cat := range snap.Categories {
		item := shownItem{Name: textIn(cat.Name, lang), Description: textIn(cat.Description, lang)}
		if cat.Required {
			item.Note = texts["alwaysOn"]
		}
		b.Categories = append(b.Categories, item)
	}
	for _, p := range snap.Partners {
		var details []string
		if len(p.DataShared) > 0 {
			shared := make([]string, len(p.DataShared))
			for i, d := range p.DataShared {
				shared[i] = cmp.Or(texts[d], d)
			}
			details = append(details, texts["dataShared"]+": "+strings.Join(shared, ", "))
		}
		var cookies []string
		for _, ck := range p.Cookies {
			cookies = append(cookies, ck.Name+" ("+ck.Lifetime+")")
		}
		cookies = append(cookies, p.Storage...)
		if len(cookies) > 0 {
			details = append(details, texts["cookies"]+": "+strings.Join(cookies, ", "))
		}
		leaves := texts["no"]
		if p.LeavesEEA {
			leaves = texts["yes"]
			if p.Transfer != "" {
				leaves += " (" + p.Transfer + ")"
			}
		}
		details = append(details, texts["leavesEEA"]+": "+leaves)
		b.Partners = append(b.Partners, shownItem{Name: p.Name, Provider: p.Provider, Purpose: textIn(p.Purpose, lang), Details: strings.Join(details, "; ")})
	}
	return b
}

// handleProofFile answers the whole proof of a consent as one file to download.
func (s *Server) handleProofFile(c echo.Context) error {
	id, err := parseConsentID(c.Param("consent_id"), "consent_id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	p, err := s.proofOf(ctx, dpoToken(c), id)
	if err != nil {
		return err
	}
	keys, err := s.opts.Keys.Published(s.opts.Origin)
	if err != nil {
		return err
	}
	cp, err := s.store.LastCheckpoint(ctx) // the proof has records: the log has one
	if err != nil {
		return err
	}
	f := &api.ProofFile{Proof: p, PublicKeys: keys, Checkpoint: string(cp.Signed), HowToVerify: api.HowToVerify}
	c.Response().Header().Set("Content-Disposition", `attachment; filename="consent-`+id+`-proof.json"`)
	return c.JSONPretty(http.StatusOK, f, "  ")
}

// exportData is what the export form offers.
type exportData struct {
	Sites, Languages []string
	Actions          []consent.Action
}

func (s *Server) handleExportPage(c echo.Context) error {
	d := &exportData{Sites: s.visibleSites(dpoToken(c)), Actions: api.Actions}
	for _, key := range d.Sites {
		st := s.servedSite(key)
		if st == nil {
			continue // gone with a reload of sites.yaml since
		}
		for _, lang := range st.Languages {
			if !slices.Contains(d.Languages, lang) {
				d.Languages = append(d.Languages, lang)
			}
		}
	}
	slices.Sort(d.Languages)
	return s.render(c, http.StatusOK, "export", &consolePage{Title: "Export", Nav: "export", Data: d})
}

// eraseData is what the erasure page shows: the form, the confirmation, or the
// outcome.
type eraseData struct {
	ConsentID string
	Proof     *api.Proof
	Sites     []string
	Effect    string
	Erased    *api.Erasure
}

func (s *Server) handleErasePage(c echo.Context) error {
	d := &eraseData{ConsentID: strings.TrimSpace(c.QueryParam("consent_id")), Effect: consent.ErasureEffect}
	page := &consolePage{Title: "Erasure", Nav: "erase", Data: d}
	if d.ConsentID == "" {
		return s.render(c, http.StatusOK, "erase", page)
	}
	p, err := s.consoleProof(c, d.ConsentID)
	if err != nil {
		return s.renderProblem(c, err, "erase", page)
	}
	d.Proof, d.Sites = p, p.Sites()
	return s.render(c, http.StatusOK, "erase", page)
}

func (s *Server) handleConsoleErase(c echo.Context) error {
	id, err := parseConsentID(c.Param("consent_id"), "consent_id")
	if err != nil {
		return err
	}
	e, err := s.erase(c.Request().Context(), dpoToken(c), id)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "erase", &consolePage{Title: "Erasure", Nav: "erase", Data: &eraseData{Erased: e}})
}

// auditData is a page of the audit log as the console shows it.
type auditData struct {
	Since, ConsentID string
	Page             *api.AuditPage
	Next             string // the address of the following page
}

const defaultAuditDays = 7

func (s *Server) handleAuditLogPage(c echo.Context) error {
	d := &auditData{ConsentID: strings.TrimSpace(c.QueryParam("consent_id")), Since: c.QueryParam("since")}
	page := &consolePage{Title: "Audit log", Nav: "audit", Data: d}
	subject := ""
	if d.ConsentID != "" {
		id, err := parseConsentID(d.ConsentID, "consent id")
		if err != nil {
			return consent.Errorf(consent.EInvalid, "%q is not a consent id: a consent id has 36 characters", d.ConsentID)
		}
		subject = consent.ConsentDigest(id)
	}
	after := c.QueryParam("after")
	if after == "" {
		today := s.opts.Now().UTC().Truncate(24 * time.Hour)
		since, err := dateParam(c, "since", today.AddDate(0, 0, -defaultAuditDays))
		if err != nil {
			return err
		}
		d.Since = since.Format(time.DateOnly)
		after = idBefore(since)
	}
	p, err := s.auditPage(c.Request().Context(), dpoToken(c), subject, after, 100)
	if err != nil {
		return err
	}
	d.Page = p
	if p.Next != "" {
		q := url.Values{"after": {p.Next}}
		if d.ConsentID != "" {
			q.Set("consent_id", d.ConsentID)
		}
		d.Next = consolePath + "/audit?" + q.Encode()
	}
	return s.render(c, http.StatusOK, "audit", page)
}

// idBefore returns the smallest time-ordered id (UUIDv7) of the millisecond t:
// the audit entries after it are those made at t or later.
func idBefore(t time.Time) string {
	var id uuid.UUID
	ms := t.UnixMilli()
	for i := range 6 {
		id[i] = byte(ms >> (8 * (5 - i)))
	}
	return id.String()
}
