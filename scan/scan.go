// Package scan holds what a scan of the sites found, and what it means: the visits a
// browser made to each page in three fresh states (no choice yet, after "Reject all",
// after "Accept all"), the inventory of cookies, storage keys and hosts of other sites
// they met, and the findings against sites.yaml, with their evidence. It writes the
// reports (JSON for machines, a self-contained HTML page for the DPO's files) and
// keeps them in a directory. The browser that makes the visits is package
// scan/browser; this package does not depend on it.
package scan

import (
	"time"
)

// State is the state of a fresh browser when a page was recorded.
type State string

const (
	NoChoice State = "no-choice"  // the first view: nothing chosen yet
	Rejected State = "reject-all" // after "Reject all", and the page viewed again
	Accepted State = "accept-all" // after "Accept all", and the page viewed again
)

// States are the states a page is visited in, in the order of the report.
var States = []State{NoChoice, Rejected, Accepted}

// Title returns how the report names the state.
func (s State) Title() string {
	switch s {
	case NoChoice:
		return "Before any choice"
	case Rejected:
		return "After “Reject all”"
	case Accepted:
		return "After “Accept all”"
	}
	return string(s)
}

// Visit is what a browser saw on one page in one fresh state.
type Visit struct {
	Page  string    `json:"page"`
	State State     `json:"state"`
	At    time.Time `json:"at"` // when the cookies were read: their lifetimes count from it
	// Loaded is whether the page loaded, with a status below 400: a page that
	// did not is not judged by what it lacks.
	Loaded bool `json:"loaded"`
	// Banner is whether consentd's banner appeared, BannerScript the URL of the
	// banner's script that the page loaded ("" if it loaded none).
	Banner       bool         `json:"banner"`
	BannerScript string       `json:"banner_script,omitempty"`
	Cookies      []Cookie     `json:"cookies"`
	Storage      []StorageKey `json:"storage"`
	Requests     []Request    `json:"requests"`
	// Error says why the visit could not be completed, such as a page that did not
	// load or a banner without its buttons; what was seen until then is kept.
	Error string `json:"error,omitempty"`
}

// Cookie is a cookie in the browser after a visit.
type Cookie struct {
	Name     string    `json:"name"`
	Domain   string    `json:"domain"`
	Path     string    `json:"path"`
	Session  bool      `json:"session"`          // gone when the browser closes
	Expires  time.Time `json:"expires,omitzero"` // zero for a session cookie
	Secure   bool      `json:"secure"`
	HTTPOnly bool      `json:"http_only"`
	SameSite string    `json:"same_site,omitempty"`
}

// lifetime returns how long c lives after the visit at: 0 for a session cookie.
func (c Cookie) lifetime(at time.Time) time.Duration {
	if c.Session {
		return 0
	}
	return c.Expires.Sub(at)
}

// StorageKey is a key in the page's localStorage or sessionStorage.
type StorageKey struct {
	Area string `json:"area"` // "local" or "session"
	Key  string `json:"key"`
}

// Request is a request a page made to a host of another site.
type Request struct {
	URL       string `json:"url"`
	Host      string `json:"host"`
	Type      string `json:"type"`                // Script, Image, XHR, Fetch, Document, ...
	Status    int    `json:"status,omitempty"`    // 0 if no response came
	Failed    string `json:"failed,omitempty"`    // the network error, if it failed
	Initiator string `json:"initiator,omitempty"` // the script or page that made it
}

// OK reports whether the request got a response that is not an error.
func (r Request) OK() bool { return r.Failed == "" && r.Status >= 200 && r.Status < 400 }
