package scrape

import "testing"

const text = `# HELP consentd_records_total Consent records durably stored, by site and action.
# TYPE consentd_records_total counter
consentd_records_total{action="reject_all",site="mixvoip.com"} 3
consentd_records_total{action="accept_all",site="mixvoip.com"} 1.5e+06
# TYPE consentd_commit_duration_seconds histogram
consentd_commit_duration_seconds_bucket{le="0.001"} 2
consentd_commit_duration_seconds_sum 0.0042
consentd_commit_duration_seconds_count 2
`

func TestValue(t *testing.T) {
	tests := []struct {
		series string
		want   float64
		ok     bool
	}{
		{`consentd_records_total{action="reject_all",site="mixvoip.com"}`, 3, true},
		{`consentd_records_total{action="accept_all",site="mixvoip.com"}`, 1.5e6, true},
		{`consentd_commit_duration_seconds_count`, 2, true},
		{`consentd_commit_duration_seconds`, 0, false},
		{`consentd_records_total{action="custom",site="mixvoip.com"}`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.series, func(t *testing.T) {
			if v, ok := Value(text, tt.series); v != tt.want || ok != tt.ok {
				t.Errorf("Value = %v, %t; want %v, %t", v, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestNames(t *testing.T) {
	got := Names(text)
	for _, name := range []string{"consentd_records_total", "consentd_commit_duration_seconds", "consentd_commit_duration_seconds_bucket", "consentd_commit_duration_seconds_sum", "consentd_commit_duration_seconds_count"} {
		if !got[name] {
			t.Errorf("Names lacks %s", name)
		}
	}
	if len(got) != 5 {
		t.Errorf("Names = %v, want 5 names", got)
	}
}
