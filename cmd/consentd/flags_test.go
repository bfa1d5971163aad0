package main

import "testing"

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"2/s", 2, true}, {"10/m", 10.0 / 60, true}, {"3600/h", 1, true}, {"0", 0, true}, {"", 0, true},
		{"0.5/s", 0.5, true}, {"2", 0, false}, {"2/d", 0, false}, {"-1/s", 0, false}, {"x/s", 0, false},
	}
	for _, tt := range tests {
		got, err := parseRate(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseRate(%q) = %v, %v; want %v, ok %t", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for _, in := range []string{"2/s", "10/m", "7/h", "0", "30/m"} {
		r, _ := parseRate(in)
		if got := (rateFlag{&r}).String(); got != in {
			t.Errorf("rate %q is written %q", in, got)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"512MiB", 512 << 20, true}, {"2GB", 2e9, true}, {"1 GiB", 1 << 30, true}, {"4096", 4096, true},
		{"0", 0, true}, {"10B", 10, true}, {"1.5GiB", 0, false}, {"-1MiB", 0, false}, {"MiB", 0, false},
		{"99999999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %v, %v; want %v, ok %t", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for _, n := range []uint64{0, 512 << 20, 3 << 30, 1000} {
		if got, err := parseSize(formatSize(n)); err != nil || got != n {
			t.Errorf("formatSize(%d) = %q, which reads back as %d", n, formatSize(n), got)
		}
	}
}
