package consent_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
)

// TestDecisionRecord: a record keeps what a proof needs of the decision and of the
// request, and no more: the page without its query, fragment and user, the client's
// prefix, a bounded user agent; its policy version and expiry come from the site.
func TestDecisionRecord(t *testing.T) {
	site := &consent.Site{
		Key:        "shop.example",
		Policy:     consent.Policy{Version: "2026-01-15"},
		Categories: []consent.Category{{ID: "technical", Required: true}, {ID: "advertising"}},
		Cookie:     consent.CookieSettings{ConsentLifetime: 30 * 24 * time.Hour, RefusalLifetime: 90 * 24 * time.Hour},
	}
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		choices consent.Choices
		arrival consent.Arrival
		want    func(r *consent.Record) string
	}{
		{"a refusal is kept for the refusal's lifetime", consent.Choices{Categories: map[string]bool{"technical": true, "advertising": false}}, consent.Arrival{At: at},
			func(r *consent.Record) string {
				if !r.ExpiresAt.Equal(at.Add(90 * 24 * time.Hour)) {
					return "expires " + r.ExpiresAt.String()
				}
				return ""
			}},
		{"a consent for the consent's", consent.Choices{Categories: map[string]bool{"technical": true, "advertising": true}}, consent.Arrival{At: at},
			func(r *consent.Record) string {
				if !r.ExpiresAt.Equal(at.Add(30 * 24 * time.Hour)) {
					return "expires " + r.ExpiresAt.String()
				}
				return ""
			}},
		{"no partners answered reads as none, not null", consent.Choices{}, consent.Arrival{},
			func(r *consent.Record) string {
				if r.Choices.Partners == nil {
					return "partners nil"
				}
				return ""
			}},
		{"the client by its prefix only", consent.Choices{}, consent.Arrival{Client: netip.MustParseAddr("203.0.113.77")},
			func(r *consent.Record) string {
				if r.IPPrefix != "203.0.113.0/24" {
					return "ip prefix " + r.IPPrefix
				}
				return ""
			}},
		{"an unknown client leaves no prefix", consent.Choices{}, consent.Arrival{},
			func(r *consent.Record) string {
				if r.IPPrefix != "" {
					return "ip prefix " + r.IPPrefix
				}
				return ""
			}},
		{"a long user agent is cut at a character", consent.Choices{}, consent.Arrival{UserAgent: strings.Repeat("a", consent.MaxUserAgent-1) + "ü and more"},
			func(r *consent.Record) string {
				if r.UserAgent != strings.Repeat("a", consent.MaxUserAgent-1) {
					return fmt.Sprintf("user agent of %d bytes", len(r.UserAgent))
				}
				return ""
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &consent.Decision{Site: site.Key, Choices: tt.choices, URL: "https://user:pw@shop.example/checkout?email=a@b.example#step2"}
			r := d.Record(site, tt.arrival)
			if r.URL != "https://shop.example/checkout" || r.PolicyVersion != "2026-01-15" || r.Site != site.Key {
				t.Errorf("record of page %q, policy %q, site %q", r.URL, r.PolicyVersion, r.Site)
			}
			if problem := tt.want(r); problem != "" {
				t.Error(problem)
			}
		})
	}
}
