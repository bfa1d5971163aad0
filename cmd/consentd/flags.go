package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// rateFlag is a flag value for a rate such as "2/s", "10/m" or "100/h"; "0" (or an
// empty value) means no limit. Its value is in events per second.
type rateFlag struct{ perSecond *float64 }

// String writes the rate in the first unit (s, m, h) that makes it a whole number.
func (f rateFlag) String() string {
	if f.perSecond == nil || *f.perSecond == 0 {
		return "0"
	}
	for _, u := range []struct {
		name    string
		seconds float64
	}{{"s", 1}, {"m", 60}, {"h", 3600}} {
		if n := *f.perSecond * u.seconds; math.Abs(n-math.Round(n)) < 1e-9 {
			return strconv.FormatFloat(math.Round(n), 'f', -1, 64) + "/" + u.name
		}
	}
	return strconv.FormatFloat(*f.perSecond, 'g', -1, 64) + "/s"
}

func (f rateFlag) Set(s string) error {
	v, err := parseRate(s)
	if err != nil {
		return err
	}
	*f.perSecond = v
	return nil
}

// parseRate reads "N/s", "N/m" or "N/h" (N a number ≥ 0) as events per second; "0"
// or "" is 0.
func parseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	count, unit, ok := strings.Cut(s, "/")
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	n, err := strconv.ParseFloat(count, 64)
	if !ok || per == 0 || err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a rate such as 2/s, 10/m or 100/h (0 for none)", s)
	}
	return n / per.Seconds(), nil
}

// sizeFlag is a flag value for a number of bytes such as "512MiB" or "2GB"; a plain
// number is bytes.
type sizeFlag struct{ bytes *uint64 }

func (f sizeFlag) String() string {
	if f.bytes == nil {
		return "0"
	}
	return formatSize(*f.bytes)
}

func (f sizeFlag) Set(s string) error {
	v, err := parseSize(s)
	if err != nil {
		return err
	}
	*f.bytes = v
	return nil
}

var sizeUnits = []struct {
	suffix string
	bytes  uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// parseSize reads a size: a whole number of bytes, or one followed by KiB, MiB,
// GiB, TiB (powers of 1024), KB, MB, GB or TB (powers of 1000).
func parseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	unit := uint64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, unit = strings.TrimSpace(rest), u.bytes
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > ^uint64(0)/unit {
		return 0, fmt.Errorf("%q is not a size such as 512MiB or 2GB", s)
	}
	return n * unit, nil
}

// formatSize writes n in the largest binary unit that divides it.
func formatSize(n uint64) string {
	for _, u := range []struct {
		suffix string
		bytes  uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.bytes == 0 {
			return strconv.FormatUint(n/u.bytes, 10) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10)
}

// Defaults and bounds of consentd serve that are not the server's.
const (
	defaultMinFreeDisk    = 512 << 20
	defaultAuditRetention = 365 * 24 * time.Hour
	maxAuditRetentionDays = 36500 // a century: beyond, the purge's time would overflow
)
