package consent

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Lifetime units, each at its longest: a month of 31 days and a year of 366, so that
// a cookie is never called longer-lived than its disclosure because of the calendar.
var lifetimeUnits = map[string]time.Duration{
	"second": time.Second,
	"minute": time.Minute,
	"hour":   time.Hour,
	"day":    24 * time.Hour,
	"week":   7 * 24 * time.Hour,
	"month":  31 * 24 * time.Hour,
	"year":   366 * 24 * time.Hour,
}

// MaxAge returns the longest the cookie lives by its disclosed lifetime, whose words
// start with "session" (0: until the browser closes) or with a number and a unit,
// such as "90 days" or "13 months (doubleclick.net)"; the rest is for the visitor.
func (c Cookie) MaxAge() (time.Duration, error) {
	words := strings.Fields(strings.ToLower(c.Lifetime))
	if len(words) > 0 && words[0] == "session" {
		return 0, nil
	}
	if len(words) >= 2 {
		n, err := strconv.Atoi(words[0])
		unit, ok := lifetimeUnits[strings.TrimSuffix(strings.TrimRight(words[1], ",;.)"), "s")]
		if err == nil && ok && n > 0 && time.Duration(n) <= math.MaxInt64/unit {
			return time.Duration(n) * unit, nil
		}
	}
	return 0, fmt.Errorf("lifetime %q does not start with how long the cookie lives, as \"90 days\", \"13 months\" or \"session\"", c.Lifetime)
}
