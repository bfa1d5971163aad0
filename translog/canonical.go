package translog

import (
	"cmp"
	"errors"
	"slices"
	"time"
	"unicode/utf8"
)

// The decision and identifying parts are RFC 8785 canonical JSON, written here
// member by member: names in the order of their UTF-16 code units, strings with
// the fewest escapes (\" \\ \b \f \n \r \t, \u00xx for the other control
// characters, everything else as it is). Invalid UTF-8 becomes U+FFFD, byte by
// byte, as encoding/json does. A reflective encoder followed by jsontext's
// Canonicalize writes the same bytes (FuzzDecisionPart checks it) at several times the
// cost, on every POST.

// appendString appends s as a canonical JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			if c < 0x20 {
				const hex = "0123456789abcdef"
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
		i++
	}
	return append(b, '"')
}

// errDuplicateName is returned for a map whose keys differ only in invalid UTF-8,
// which both become U+FFFD: JSON with a name twice has no canonical form.
var errDuplicateName = errors.New("translog: canonical JSON: two names are the same once invalid UTF-8 is replaced")

// appendBools appends m as a canonical JSON object; nil is the empty object.
func appendBools(b []byte, m map[string]bool) ([]byte, error) {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.SortFunc(names, compareUTF16)
	b = append(b, '{')
	for i, name := range names {
		if i > 0 {
			if compareUTF16(names[i-1], name) == 0 {
				return nil, errDuplicateName
			}
			b = append(b, ',')
		}
		b = appendString(b, name)
		if m[name] {
			b = append(b, `:true`...)
		} else {
			b = append(b, `:false`...)
		}
	}
	return append(b, '}'), nil
}

// compareUTF16 orders strings by their UTF-16 code units, invalid UTF-8 read as
// U+FFFD. It differs from the order of bytes only above U+FFFF, whose surrogates
// come before U+E000–U+FFFF.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			if ua, ub := firstUnit(ra), firstUnit(rb); ua != ub {
				return cmp.Compare(ua, ub)
			}
			return cmp.Compare(ra, rb) // one high surrogate: the low ones follow the code points
		}
		a, b = a[na:], b[nb:]
	}
	return cmp.Compare(len(a), len(b))
}

// firstUnit is the first UTF-16 code unit of r.
func firstUnit(r rune) rune {
	if r < 0x10000 {
		return r
	}
	return 0xd800 + (r-0x10000)>>10
}

// appendTime appends t as encoding/json writes a time: RFC 3339 with as many
// fractional digits as it needs, in a string.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, errors.New("translog: a time's year is outside [0,9999]")
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}
