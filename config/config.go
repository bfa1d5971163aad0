// Package config loads sites.yaml: it decodes it strictly, validates every entry and
// reports each problem as "file:line: message", then resolves the shared catalog
// (controller, categories, partners) into one consent.Site per site.
package config

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	consent "github.com/mixvoip/consentd"
)

// Defaults for what a site may leave out.
const (
	DefaultCookieName    = "consent"
	DefaultLifetimeDays  = 182  // about 6 months, for consent and refusal alike
	DefaultRetentionDays = 1826 // 5 years: consent lifetime plus time to defend claims
)

// Config is a validated sites.yaml.
type Config struct {
	File  string
	Sites map[string]*consent.Site
	// Warnings are problems that do not stop the file from loading, such as a
	// partner's account id that is still a placeholder, in file order.
	Warnings []*Error
}

// SiteKeys returns the site keys in sorted order.
func (c *Config) SiteKeys() []string {
	keys := make([]string, 0, len(c.Sites))
	for k := range c.Sites {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Error is one problem in a configuration file, with where it is.
type Error struct {
	File    string
	Line    int // 0 for a problem with the file as a whole
	Message string
	Warning bool // the file loads all the same
}

// Error returns "file:line: message" ("file:line: warning: message" for a warning),
// or "file: message" for a problem with the whole file (Line 0), so that no one looks
// for a line 0.
func (e *Error) Error() string {
	msg := e.Message
	if e.Warning {
		msg = "warning: " + msg
	}
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, msg)
}

// Errors is every problem found in one file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads and validates the file at path. The error, if any, is an Errors value
// (or an I/O error when the file cannot be read).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse validates data as the contents of a sites.yaml named name.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, decodeErrors(name, err)
	}
	if empty(&root) {
		return nil, Errors{{File: name, Message: "the file is empty: it needs controller, dpo, categories, partners and sites (see the shipped sites.yaml)"}}
	}
	var f file
	v := &validator{file: name, root: &root}
	if err := v.decode(data, &f); err != nil {
		return nil, decodeErrors(name, err)
	}
	cfg := v.resolve(&f)
	if len(v.errs) > 0 {
		slices.SortStableFunc(v.errs, func(a, b *Error) int { return a.Line - b.Line })
		return nil, v.errs
	}
	slices.SortStableFunc(v.warns, func(a, b *Error) int { return a.Line - b.Line })
	cfg.File = name
	cfg.Warnings = v.warns
	return cfg, nil
}

// empty reports whether a document holds nothing: no bytes, only comments, or a
// bare "---" or null, which the decoder would otherwise answer with EOF or a zero
// file and a dozen errors about what is missing.
func empty(root *yaml.Node) bool {
	if len(root.Content) == 0 {
		return true
	}
	n := root.Content[0]
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// path names a node in the document: map keys as strings, list indexes as ints.
type path []any

// within reports whether p is q or lies inside it.
func (p path) within(q path) bool {
	return len(p) >= len(q) && slices.Equal(p[:len(q)], q)
}

// validator collects every problem with the line it is on, so that the user can fix
// the whole file in one go.
type validator struct {
	file   string
	root   *yaml.Node
	errs   Errors
	warns  []*Error
	failed []path // values the decoder could not take (wrong type, duplicate key) and left zero
}

// errorf records a problem with the value at p, unless the decoder could not take that
// value (or one it is part of): the user has been told why, and its zero value would
// only add errors about a field they did fill in.
func (v *validator) errorf(p path, format string, args ...any) {
	for _, f := range v.failed {
		if p.within(f) {
			return
		}
	}
	v.errs = append(v.errs, &Error{File: v.file, Line: v.line(p), Message: fmt.Sprintf(format, args...)})
}

// warnf records a problem that does not stop the file from loading.
func (v *validator) warnf(p path, format string, args ...any) {
	v.warns = append(v.warns, &Error{File: v.file, Line: v.line(p), Message: fmt.Sprintf(format, args...), Warning: true})
}

// intact reports whether the value at p was decoded whole: the decoder took it, what
// it is part of and everything inside it. Checks that conclude something
// from a missing value elsewhere (an unknown category, an empty list) ask this first.
func (v *validator) intact(p path) bool {
	for _, f := range v.failed {
		if p.within(f) || f.within(p) {
			return false
		}
	}
	return true
}

// line returns the line of the node at p, or of its nearest ancestor that exists (a
// missing key is reported on the mapping that lacks it).
func (v *validator) line(p path) int {
	key, n := v.node(p)
	if key != nil {
		return key.Line
	}
	return n.Line
}

// lineComment returns the comments at the end of the lines of the key and the value
// at p (a flow mapping such as { enabled: true } carries the comment of its line).
func (v *validator) lineComment(p path) string {
	key, n := v.node(p)
	if key != nil {
		return key.LineComment + " " + n.LineComment
	}
	return n.LineComment
}

// node returns the node at p, or its nearest ancestor that exists, with the key node
// that names it (nil for a list item or the document).
func (v *validator) node(p path) (key, n *yaml.Node) {
	n = v.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, step := range p {
		k, next := child(n, step)
		if next == nil {
			break
		}
		key, n = k, next
	}
	return key, n
}

func child(n *yaml.Node, step any) (key, value *yaml.Node) {
	switch s := step.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil, nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == s {
				return n.Content[i], n.Content[i+1]
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && s < len(n.Content) {
			return nil, n.Content[s]
		}
	}
	return nil, nil
}

var (
	idPattern           = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	siteKeyPattern      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)
	jurisdictionPattern = regexp.MustCompile(`^[A-Z]{2}$`)
	cookiePattern       = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
	storagePattern      = regexp.MustCompile(`^[^\s"'<>\\]{1,128}$`)
	hostPattern         = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	dataShared          = []string{"ip_address", "advertising_id"}
)

func (v *validator) resolve(f *file) *Config {
	controller := v.controller(path{"controller"}, f.Controller)
	if f.DPO.Email == "" {
		v.errorf(path{"dpo", "email"}, "dpo.email is required: visitors must know how to reach the data protection officer")
	}
	categories := v.categories(f.Categories)
	partners := v.partners(f.Partners, categories)
	if len(f.Sites) == 0 && v.intact(path{"sites"}) {
		v.errorf(path{"sites"}, "no sites: add at least one under sites:")
	}
	cfg := &Config{Sites: make(map[string]*consent.Site, len(f.Sites))}
	for key, sf := range f.Sites {
		site := v.site(key, sf, partners, f.Partners)
		site.DPO = f.DPO
		site.Categories = categories
		if sf != nil && sf.Controller != nil {
			site.Controller = v.controller(path{"sites", key, "controller"}, *sf.Controller)
		} else {
			site.Controller = controller
		}
		v.texts(key, site)
		cfg.Sites[key] = site
	}
	return cfg
}

func (v *validator) controller(p path, c consent.Controller) consent.Controller {
	if c.Name == "" || c.Address == "" {
		v.errorf(append(p, firstEmpty(c.Name, "name", "address")), "controller needs name and address: the banner must name who is responsible")
	}
	if c.Email != "" && !strings.Contains(c.Email, "@") {
		v.errorf(append(p, "email"), "controller email %q is not an e-mail address", c.Email)
	}
	if !jurisdictionPattern.MatchString(c.Jurisdiction) {
		v.errorf(append(p, "jurisdiction"), "controller jurisdiction %q must be an ISO 3166 country code such as LU: receipts name the law that applies", c.Jurisdiction)
	}
	return c
}

func (v *validator) categories(files []consent.Category) []consent.Category {
	if len(files) == 0 && v.intact(path{"categories"}) {
		v.errorf(path{"categories"}, "no categories: define at least technical (required: true) and one optional category")
	}
	var out []consent.Category
	seen := map[string]bool{}
	for i, c := range files {
		p := path{"categories", i}
		switch {
		case !idPattern.MatchString(c.ID):
			v.errorf(append(p, "id"), "category id %q must be lower-case letters, digits and dashes", c.ID)
		case seen[c.ID]:
			v.errorf(append(p, "id"), "duplicate category id %q", c.ID)
		}
		seen[c.ID] = true
		out = append(out, c)
	}
	return out
}

func (v *validator) partners(files map[string]*consent.Partner, categories []consent.Category) map[string]consent.Partner {
	out := make(map[string]consent.Partner, len(files))
	for id, pf := range files {
		p := path{"partners", id}
		if !idPattern.MatchString(id) {
			v.errorf(p, "partner id %q must be lower-case letters, digits and dashes", id)
		}
		if pf == nil {
			v.errorf(p, "partner %q is empty", id)
			continue
		}
		if pf.Name == "" || pf.Provider == "" {
			v.errorf(append(p, firstEmpty(pf.Name, "name", "provider")), "partner %q needs name and provider", id)
		}
		i := slices.IndexFunc(categories, func(c consent.Category) bool { return c.ID == pf.Category })
		switch {
		case i < 0:
			if v.intact(path{"categories"}) {
				v.errorf(append(p, "category"), "partner %q: unknown category %q", id, pf.Category)
			}
		case categories[i].Required:
			v.errorf(append(p, "category"), "partner %q: category %q is always on; a partner needs an opt-in category", id, pf.Category)
		}
		if len(pf.DataShared) == 0 && v.intact(append(p, "data_shared")) {
			v.errorf(append(p, "data_shared"), "partner %q: data_shared is required (ip_address and/or advertising_id)", id)
		}
		for j, d := range pf.DataShared {
			if !slices.Contains(dataShared, d) {
				v.errorf(append(p, "data_shared", j), "partner %q: unknown data_shared %q (use %s)", id, d, strings.Join(dataShared, " or "))
			}
		}
		what := fmt.Sprintf("partner %q", id)
		v.cookies(append(p, "cookies"), what, pf.Cookies)
		v.storage(append(p, "storage"), what, pf.Storage)
		v.hosts(append(p, "hosts"), what, pf.Hosts)
		if len(pf.Cookies) == 0 && len(pf.Storage) == 0 && v.intact(append(p, "cookies")) && v.intact(append(p, "storage")) {
			// What a withdrawal removes comes from these lists: empty, it removes nothing.
			v.warnf(p, "partner %q declares neither cookies nor storage: a withdrawal cannot remove what its tags keep in the browser", id)
		}
		v.url(append(p, "privacy_url"), pf.PrivacyURL, "privacy_url")
		if pf.LeavesEEA && pf.Transfer == "" {
			v.errorf(append(p, "leaves_eea"), "partner %q leaves the EEA: say under transfer: on which safeguard", id)
		}
		if len(pf.Tags) == 0 && v.intact(append(p, "tags")) {
			v.errorf(append(p, "tags"), "partner %q has no tags: nothing would load after opt-in", id)
		}
		for j, t := range pf.Tags {
			if (t.Src == "") == (t.Inline == "") {
				v.errorf(append(p, "tags", j), "partner %q: each tag has exactly one of src or inline", id)
			}
			if t.Src != "" {
				v.url(append(p, "tags", j, "src"), strings.ReplaceAll(t.Src, "{account}", "x"), "src")
			}
		}
		partner := *pf
		partner.ID = id
		// "cookies: []" reads as none at all: what is told about a partner, and its
		// fingerprint, must not tell the two apart.
		if len(partner.Cookies) == 0 {
			partner.Cookies = nil
		}
		if len(partner.Tags) == 0 {
			partner.Tags = nil
		}
		out[id] = partner
	}
	return out
}

func (v *validator) site(key string, sf *siteFile, catalog map[string]consent.Partner, files map[string]*consent.Partner) *consent.Site {
	p := path{"sites", key}
	site := &consent.Site{Key: key}
	if !siteKeyPattern.MatchString(key) {
		v.errorf(p, "site key %q must be a lower-case domain name such as example.com", key)
	}
	if sf == nil {
		v.errorf(p, "site %q is empty", key)
		return site
	}
	if len(sf.Origins) == 0 && v.intact(append(p, "origins")) {
		v.errorf(append(p, "origins"), "site %q needs origins (such as https://%s and https://www.%s)", key, key, key)
	}
	for i, o := range sf.Origins {
		if msg := checkOrigin(o); msg != "" {
			v.errorf(append(p, "origins", i), "origin %q %s", o, msg)
		}
	}
	site.Origins = sf.Origins

	if len(sf.Languages) == 0 && v.intact(append(p, "languages")) {
		v.errorf(append(p, "languages"), "site %q needs languages (the first is the default)", key)
	}
	for i, l := range sf.Languages {
		if !slices.Contains(consent.Languages, l) {
			v.errorf(append(p, "languages", i), "unknown language %q (the banner speaks %s)", l, strings.Join(consent.Languages, ", "))
		}
	}
	site.Languages = sf.Languages

	v.url(append(p, "policy", "url"), sf.Policy.URL, "policy url")
	if sf.Policy.Version == "" {
		v.errorf(append(p, "policy", "version"), "site %q: policy version is required (a new version asks every visitor again)", key)
	}
	site.Policy = sf.Policy

	site.Cookie = v.cookie(append(p, "cookie"), key, sf)
	site.RetentionPeriod = days(orDefault(sf.RetentionDays, DefaultRetentionDays))
	if site.RetentionPeriod < site.Cookie.ConsentLifetime {
		v.errorf(append(p, "retention_days"), "retention_days must be at least the consent lifetime")
	}
	site.FloatingButton = sf.FloatingButton
	what := fmt.Sprintf("site %q: technical", key)
	v.cookies(append(p, "technical", "cookies"), what, sf.Technical.Cookies)
	v.storage(append(p, "technical", "storage"), what, sf.Technical.Storage)
	v.hosts(append(p, "technical", "hosts"), what, sf.Technical.Hosts)
	site.Technical = sf.Technical
	site.Texts = v.overrides(p, sf)
	site.Theme = v.theme(append(p, "theme"), sf.Theme)

	for id := range sf.Partners {
		if _, ok := files[id]; !ok && v.intact(path{"partners", id}) {
			v.errorf(append(p, "partners", id), "unknown partner %q: define it under the top-level partners:", id)
		}
	}
	ids := make([]string, 0, len(catalog))
	for id := range catalog {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		partner := catalog[id]
		partner.Tags = slices.Clone(partner.Tags)
		if sp := sf.Partners[id]; sp != nil {
			partner.Enabled = sp.Enabled
			v.account(append(p, "partners", id), key, &partner, sp.Account)
		}
		site.Partners = append(site.Partners, partner)
	}
	return site
}

// cookies checks the cookies that what (a partner, a site's technical ones) declares.
func (v *validator) cookies(p path, what string, cookies []consent.Cookie) {
	for j, c := range cookies {
		if !cookiePattern.MatchString(strings.TrimSuffix(c.Name, "*")) {
			v.errorf(append(p, j, "name"), "%s: cookie name %q: 1 to 64 letters, digits and !#$%%&'*+.^_`|~- (a trailing * matches any ending)", what, c.Name)
		}
		if _, err := c.MaxAge(); err != nil {
			v.errorf(append(p, j, "lifetime"), "%s: cookie %q: %v", what, c.Name, err)
		}
	}
}

// storage checks the localStorage and sessionStorage keys that what declares.
func (v *validator) storage(p path, what string, keys []string) {
	for j, k := range keys {
		if !storagePattern.MatchString(strings.TrimSuffix(k, "*")) {
			v.errorf(append(p, j), "%s: storage key %q: 1 to 128 characters, no spaces, quotes, <, > or \\", what, k)
		}
	}
}

// hosts checks the hosts that what declares it contacts.
func (v *validator) hosts(p path, what string, hosts []string) {
	for j, h := range hosts {
		if !hostPattern.MatchString(strings.TrimPrefix(h, "*.")) {
			v.errorf(append(p, j), "%s: host %q: a lower-case host name such as www.example.com, or *.example.com for the domain and its subdomains", what, h)
		}
	}
}

// account fills the per-site account id into the partner's tags.
func (v *validator) account(p path, site string, partner *consent.Partner, account string) {
	if strings.ContainsAny(account, "'\"<>\\ ") {
		v.errorf(append(p, "account"), "account %q may not contain quotes, spaces, <, > or \\", account)
		return
	}
	uses := false
	for i, t := range partner.Tags {
		uses = uses || strings.Contains(t.Src+t.Inline, "{account}")
		partner.Tags[i].Src = strings.ReplaceAll(t.Src, "{account}", account)
		partner.Tags[i].Inline = strings.ReplaceAll(t.Inline, "{account}", account)
	}
	if uses && account == "" && partner.Enabled {
		v.errorf(append(p, "account"), "partner %q needs account: its tags use {account}", partner.ID)
	}
	marked := strings.Contains(v.lineComment(p)+v.lineComment(append(p, "account")), "PLACEHOLDER")
	if uses && account != "" && partner.Enabled && (marked || placeholder(account)) {
		v.warnf(append(p, "account"), "partner %s on %s: account %q looks like a placeholder; its tag will report nothing until you put the real id", partner.ID, site, account)
	}
}

// placeholder reports whether account looks made up, as the ids sites.yaml ships
// with do (AW-000000001, "0000001"): after a prefix such as AW-, only digits, mostly
// leading zeros. Real ids of the ad networks do not start with a run of zeros.
func placeholder(account string) bool {
	digits := strings.TrimLeftFunc(account, func(r rune) bool { return r < '0' || r > '9' })
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return false
	}
	zeros := len(digits) - len(strings.TrimLeft(digits, "0"))
	return zeros >= 3 && 2*zeros >= len(digits)
}

func (v *validator) cookie(p path, key string, sf *siteFile) consent.CookieSettings {
	c := sf.Cookie
	name := c.Name
	if name == "" {
		name = DefaultCookieName
	}
	if !cookiePattern.MatchString(name) {
		v.errorf(append(p, "name"), "cookie name %q has characters a cookie name cannot have", name)
	}
	domain := c.Domain
	if domain == "" {
		domain = key
	}
	for i, o := range sf.Origins {
		host := originHost(o)
		if host != "" && v.intact(append(p, "domain")) && host != domain && !strings.HasSuffix(host, "."+domain) {
			v.errorf(path{"sites", key, "origins", i}, "origin %q is not under the cookie domain %q", o, domain)
		}
	}
	consentDays := orDefault(c.ConsentDays, DefaultLifetimeDays)
	refusalDays := orDefault(c.RefusalDays, DefaultLifetimeDays)
	maxDays := int(consent.MaxConsentLifetime / (24 * time.Hour))
	if consentDays < 1 || consentDays > maxDays {
		v.errorf(append(p, "consent_days"), "consent_days must be 1 to %d (a consent is never kept longer than 13 months)", maxDays)
	}
	if refusalDays < 1 || refusalDays > maxDays {
		v.errorf(append(p, "refusal_days"), "refusal_days must be 1 to %d", maxDays)
	}
	return consent.CookieSettings{Name: name, Domain: domain, ConsentLifetime: days(consentDays), RefusalLifetime: days(refusalDays)}
}

// texts checks that every category and enabled partner speaks every site language.
func (v *validator) texts(key string, site *consent.Site) {
	for _, lang := range site.Languages {
		for i, c := range site.Categories {
			if (c.Name[lang] == "" || c.Description[lang] == "") && v.intact(path{"categories", i}) {
				v.errorf(path{"categories", i}, "category %q needs name and description in %q (a language of %s)", c.ID, lang, key)
			}
		}
		for _, partner := range site.Partners {
			if partner.Enabled && partner.Purpose[lang] == "" && v.intact(path{"partners", partner.ID, "purpose"}) {
				v.errorf(path{"partners", partner.ID, "purpose"}, "partner %q needs a purpose in %q (a language of %s)", partner.ID, lang, key)
			}
		}
	}
}

func (v *validator) url(p path, raw, what string) {
	if msg := checkURL(raw); msg != "" {
		v.errorf(p, "%s %q %s", what, raw, msg)
	}
}

// firstEmpty returns firstKey if first is empty, else secondKey: of two required
// keys, a problem is reported on the one to fill in.
func firstEmpty(first, firstKey, secondKey string) string {
	if first == "" {
		return firstKey
	}
	return secondKey
}

func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }
