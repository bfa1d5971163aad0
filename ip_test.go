package consent_test

import (
	"net/netip"
	"testing"

	consent "github.com/mixvoip/consentd"
)

func TestTruncateIP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"203.0.113.77", "203.0.113.0/24"},
		{"::ffff:203.0.113.77", "203.0.113.0/24"},
		{"2001:db8:abcd:1234:5678::1", "2001:db8:abcd::/48"},
		{"::1", "::/48"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := consent.TruncateIP(netip.MustParseAddr(tt.in)); got != tt.want {
				t.Errorf("TruncateIP(%s) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
	if got := consent.TruncateIP(netip.Addr{}); got != "" {
		t.Errorf("invalid address gives %q, want empty", got)
	}
}
