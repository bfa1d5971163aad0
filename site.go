package consent

import "time"

// Site is one website as the banner and the server see it: the sites.yaml entry
// with the shared catalog (controller, categories, partners) resolved into it.
type Site struct {
	Key             string // the sites.yaml key, also the banner's URL: /v1/banner/{Key}.js
	Controller      Controller
	DPO             Contact
	Policy          Policy
	Origins         []string // scheme://host[:port] the banner may run on and post from
	Languages       []string // the site's languages; the first is the default
	Cookie          CookieSettings
	Categories      []Category
	Partners        []Partner // every partner in the catalog with this site's switch
	FloatingButton  bool      // show a small button that reopens the choices
	RetentionPeriod time.Duration
	// Texts override UI texts of the banner for this site: language → text key (one
	// of TextKeys) → text. Material: a change asks every visitor again.
	Texts map[string]map[string]string
	// Theme sets the banner's colours: theme name (one of ThemeNames) → CSS hex
	// colour. Not material: colours do not change what the visitor agrees to.
	Theme map[string]string
	// Technical is what the site itself keeps and contacts without asking: a scan
	// accepts these before a choice and after a refusal, and nothing else.
	Technical Technical
}

// Technical lists what a site needs to work and so may use without consent: its own
// cookies and storage keys (a trailing "*" matches a prefix), and the hosts of other
// sites its pages load from (a leading "*." matches the domain and its subdomains).
type Technical struct {
	Cookies []Cookie `json:"cookies,omitempty" yaml:"cookies"`
	Storage []string `json:"storage,omitempty" yaml:"storage"`
	Hosts   []string `json:"hosts,omitempty" yaml:"hosts"`
}

// Controller is who decides about the processing (GDPR Art. 4(7)).
type Controller struct {
	Name         string `json:"name" yaml:"name"`
	Address      string `json:"address" yaml:"address"`
	Email        string `json:"email" yaml:"email"`
	Jurisdiction string `json:"jurisdiction" yaml:"jurisdiction"` // ISO 3166 country whose law governs, e.g. "LU"
}

// Contact is a person or office that can be reached, such as the DPO.
type Contact struct {
	Name  string `json:"name" yaml:"name"`
	Email string `json:"email" yaml:"email"`
}

// Policy is the privacy policy the banner links to. A new version asks every visitor
// again.
type Policy struct {
	URL     string `json:"url" yaml:"url"`
	Version string `json:"version" yaml:"version"`
}

// CookieSettings tell the banner where and how long to keep the visitor's choice.
type CookieSettings struct {
	Name   string // default "consent"
	Domain string // registrable domain, so that www and apex share the cookie
	// Separate lifetimes: a refusal is remembered too (the "rejection cookie"), for a
	// lifetime of its own, but a consent may never be kept longer than 13 months.
	ConsentLifetime time.Duration
	RefusalLifetime time.Duration
}

// MaxConsentLifetime is the longest a consent may be kept before asking again
// (CNIL, CNPD: 13 months).
const MaxConsentLifetime = 395 * 24 * time.Hour

// Text is a string in several languages, keyed by language code ("de", "en", ...).
type Text map[string]string

// Category is a purpose the visitor can allow or refuse.
type Category struct {
	ID          string `json:"id" yaml:"id"`
	Required    bool   `json:"required" yaml:"required"` // technical: always on, cannot be refused
	Name        Text   `json:"name" yaml:"name"`
	Description Text   `json:"description" yaml:"description"`
}

// Partner is a third party whose tags the banner loads only after opt-in, with what
// the visitor must be told about it.
type Partner struct {
	ID         string   `json:"id" yaml:"-"`      // its key in the catalog
	Enabled    bool     `json:"enabled" yaml:"-"` // marketing's switch, per site
	Name       string   `json:"name" yaml:"name"`
	Provider   string   `json:"provider" yaml:"provider"`
	Category   string   `json:"category" yaml:"category"`
	Purpose    Text     `json:"purpose" yaml:"purpose"`
	DataShared []string `json:"data_shared" yaml:"data_shared"` // "ip_address", "advertising_id"
	Cookies    []Cookie `json:"cookies" yaml:"cookies"`
	// Storage are the keys the partner's tags keep in the page's localStorage and
	// sessionStorage; a name ending in "*" matches every key with that prefix. The
	// banner removes them, and the cookies, on withdrawal.
	Storage     []string `json:"storage,omitempty" yaml:"storage"`
	LeavesEEA   bool     `json:"leaves_eea" yaml:"leaves_eea"`
	Transfer    string   `json:"transfer,omitempty" yaml:"transfer"` // safeguard, e.g. "EU-US Data Privacy Framework"
	PrivacyURL  string   `json:"privacy_url" yaml:"privacy_url"`
	ConsentMode bool     `json:"consent_mode" yaml:"consent_mode"` // a Google tag: gets Consent Mode v2 signals
	Tags        []Tag    `json:"tags" yaml:"tags"`                 // what loads after opt-in, in order
	// Hosts are the hosts the partner's tags contact besides those of their src
	// URLs ("*.doubleclick.net" matches the domain and its subdomains). A scan
	// calls any other host a page contacts undeclared.
	Hosts []string `json:"hosts,omitempty" yaml:"hosts"`
}

// Cookie is a cookie a partner sets. The banner deletes it on withdrawal; a name
// ending in "*" matches every cookie with that prefix.
type Cookie struct {
	Name     string `json:"name" yaml:"name"`
	Lifetime string `json:"lifetime" yaml:"lifetime"` // as told to the visitor: "90 days", "session"
}

// Tag is one piece of a partner's code: a script URL or an inline snippet.
type Tag struct {
	Src    string `json:"src,omitempty" yaml:"src"`
	Inline string `json:"inline,omitempty" yaml:"inline"`
}

// Partner returns the partner with the given id, or nil.
func (s *Site) Partner(id string) *Partner {
	for i := range s.Partners {
		if s.Partners[i].ID == id {
			return &s.Partners[i]
		}
	}
	return nil
}

// Category returns the category with the given id, or nil.
func (s *Site) Category(id string) *Category {
	for i := range s.Categories {
		if s.Categories[i].ID == id {
			return &s.Categories[i]
		}
	}
	return nil
}

// HasOrigin reports whether origin (as sent in an Origin header) belongs to the site.
func (s *Site) HasOrigin(origin string) bool {
	for _, o := range s.Origins {
		if o == origin {
			return true
		}
	}
	return false
}

// AllChoices returns the choices of "accept all" (granted) or "reject all" on the
// site: every category and every enabled partner answered, the required categories
// on.
func (s *Site) AllChoices(granted bool) Choices {
	c := Choices{Categories: map[string]bool{}, Partners: map[string]bool{}}
	for _, cat := range s.Categories {
		c.Categories[cat.ID] = granted || cat.Required
	}
	for _, p := range s.Partners {
		if p.Enabled {
			c.Partners[p.ID] = granted
		}
	}
	return c
}

// Lifetime returns how long a decision with the given choices is kept: the consent
// lifetime if it grants any optional category or any partner, else the refusal's.
func (s *Site) Lifetime(c Choices) time.Duration {
	for _, cat := range s.Categories {
		if !cat.Required && c.Categories[cat.ID] {
			return s.Cookie.ConsentLifetime
		}
	}
	for _, granted := range c.Partners {
		if granted {
			return s.Cookie.ConsentLifetime
		}
	}
	return s.Cookie.RefusalLifetime
}

// Languages are the languages the banner has texts for. A site may use any of them.
var Languages = []string{"de", "en", "fr", "nl"}

// TextKeys are the keys of the banner's UI texts: every language file of the banner
// has exactly these, and a site may override any of them in sites.yaml.
var TextKeys = []string{
	"title", "body", "privacy", "partners", "acceptAll", "rejectAll", "customize",
	"save", "close", "settings", "alwaysOn", "controller", "details", "provider",
	"purpose", "dataShared", "ip_address", "advertising_id", "cookies", "none",
	"leavesEEA", "yes", "no", "embed", "unavailable", "allowOnce", "allowAlways",
	"consentId", "copy", "copied", "records",
}

// ThemeNames are the banner colours a site may set, in the order the banner applies
// them; DefaultTheme holds the light-mode colour of each. The banner's own dark
// mode applies only to sites that set no theme.
var ThemeNames = []string{"background", "text", "accent", "accent-text", "border", "focus"}

// DefaultTheme is the banner's colour for each of ThemeNames when a site sets none.
var DefaultTheme = map[string]string{
	"background": "#ffffff", "text": "#1b1b1f", "accent": "#0b57d0",
	"accent-text": "#ffffff", "border": "#6b6b76", "focus": "#0b57d0",
}

// ThemeContrast are the pairs of theme colours (foreground, background) that carry
// text, each of which must reach a contrast ratio of MinContrast (WCAG 2.2 AA).
var ThemeContrast = [][2]string{{"text", "background"}, {"accent-text", "accent"}}

// MinContrast is the least contrast ratio of text to its background (WCAG 1.4.3).
const MinContrast = 4.5

// RetentionLimits returns, per site, the time before which its records are past
// their retention period at now: what a purge removes.
func RetentionLimits(sites map[string]*Site, now time.Time) map[string]time.Time {
	limits := make(map[string]time.Time, len(sites))
	for key, s := range sites {
		limits[key] = now.Add(-s.RetentionPeriod)
	}
	return limits
}
