// Package consent holds the domain of consentd: the sites and their partners, the
// visitor's decisions as append-only records, and the interfaces the adapters
// (store/bolt, server, banner, ...) implement or use. It imports none of them.
package consent

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Action is what the visitor did in the banner.
type Action string

// The actions a record can carry. The set is fixed: the banner sends one of these and
// the server rejects anything else.
const (
	ActionAcceptAll Action = "accept_all"
	ActionRejectAll Action = "reject_all"
	ActionCustom    Action = "custom"
	ActionWithdraw  Action = "withdraw"
	ActionGPC       Action = "gpc"
)

// Valid reports whether a is one of the known actions.
func (a Action) Valid() bool {
	switch a {
	case ActionAcceptAll, ActionRejectAll, ActionCustom, ActionWithdraw, ActionGPC:
		return true
	}
	return false
}

// Choices is the visitor's explicit answer per category and per partner.
type Choices struct {
	Categories map[string]bool `json:"categories"`
	Partners   map[string]bool `json:"partners"`
}

// AnswerList writes the answers to categories or partners as "advertising=no
// technical=yes", in name order, "-" for none: as the CLI and the console show
// them.
func AnswerList(answers map[string]bool) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(answers)) {
		answer := "no"
		if answers[name] {
			answer = "yes"
		}
		parts = append(parts, name+"="+answer)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// Record is one decision of one visitor, as stored: append-only, never updated.
type Record struct {
	ID            string    `json:"record_id"` // UUIDv7, time-ordered, assigned by the server
	ConsentID     string    `json:"consent_id"`
	Site          string    `json:"site"`
	Action        Action    `json:"action"`
	Choices       Choices   `json:"choices"`
	Fingerprint   string    `json:"fingerprint"`
	PolicyVersion string    `json:"policy_version"`
	Language      string    `json:"language"`
	Surface       Surface   `json:"surface"`
	GPC           bool      `json:"gpc"`
	URL           string    `json:"url"`       // page URL without query or fragment
	IPPrefix      string    `json:"ip_prefix"` // IPv4 /24 or IPv6 /48, never the full address
	UserAgent     string    `json:"user_agent"`
	RecordedAt    time.Time `json:"recorded_at"` // server time, UTC
	ExpiresAt     time.Time `json:"expires_at"`  // when the banner asks again
	LogIndex      int64     `json:"log_index"`   // of the record's leaf in the store's log, set by the store
	Receipt       *Receipt  `json:"receipt,omitempty"`
}

// Surface is where in the banner the visitor decided.
type Surface string

// The surfaces a record can carry.
const (
	SurfaceBanner      Surface = "banner"      // the first layer
	SurfacePreferences Surface = "preferences" // the second layer
	SurfacePlaceholder Surface = "placeholder" // an embed's "always allow"
	SurfaceAPI         Surface = "api"         // window.consent.set from the page
	SurfaceBrowser     Surface = "browser"     // a browser signal such as GPC
)

// Valid reports whether s is one of the known surfaces.
func (s Surface) Valid() bool {
	switch s {
	case SurfaceBanner, SurfacePreferences, SurfacePlaceholder, SurfaceAPI, SurfaceBrowser:
		return true
	}
	return false
}
