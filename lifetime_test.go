package consent_test

import (
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
)

func TestCookieMaxAge(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		lifetime string
		want     time.Duration
		ok       bool
	}{
		{"90 days", 90 * day, true},
		{"1 day", day, true},
		{"13 months (doubleclick.net)", 13 * 31 * day, true},
		{"1 year (linkedin.com)", 366 * day, true},
		{"2 Years", 2 * 366 * day, true},
		{"30 minutes", 30 * time.Minute, true},
		{"session", 0, true},
		{"Session (until the browser closes)", 0, true},
		{"", 0, false},
		{"ninety days", 0, false},
		{"90", 0, false},
		{"90 fortnights", 0, false},
		{"0 days", 0, false},
		{"-1 days", 0, false},
		{"99999999999 years", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.lifetime, func(t *testing.T) {
			got, err := consent.Cookie{Name: "x", Lifetime: tt.lifetime}.MaxAge()
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("MaxAge(%q) = %v, %v; want %v, ok %v", tt.lifetime, got, err, tt.want, tt.ok)
			}
		})
	}
}

// FuzzCookieMaxAge: sites.yaml's lifetimes are read on every load; a lifetime
// either reads as a positive duration (0 only for a session) or is refused.
func FuzzCookieMaxAge(f *testing.F) {
	for _, s := range []string{"90 days", "13 months (doubleclick.net)", "session", "", "9223372036854775807 years", "1 weeks,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, lifetime string) {
		d, err := consent.Cookie{Lifetime: lifetime}.MaxAge()
		if err == nil && d < 0 {
			t.Errorf("MaxAge(%q) = %v", lifetime, d)
		}
	})
}
