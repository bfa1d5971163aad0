package translog

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	consent "github.com/mixvoip/consentd"
)

// CSVHeader names the columns of the rows AppendRecordCSV writes.
var CSVHeader = []string{"record_id", "consent_id", "site", "recorded_at", "action", "surface", "language",
	"fingerprint", "policy_version", "gpc", "categories", "partners", "url", "ip_prefix", "user_agent",
	"expires_at", "log_index"}

// AppendRecord appends the record whose leaf, at index, is l and whose parts are
// decision and identifying to dst in format: AppendRecordJSON or AppendRecordCSV.
func AppendRecord(dst []byte, format consent.ExportFormat, l *Leaf, index int64, decision, identifying []byte) ([]byte, error) {
	if format == consent.ExportCSV {
		return AppendRecordCSV(dst, l, index, decision, identifying)
	}
	return AppendRecordJSON(dst, l, index, decision, identifying)
}

// AppendRecordCSV appends to dst the record whose leaf, at index, is l and whose parts
// are decision and identifying (empty once erased), as one CSV row of the columns
// CSVHeader names, quoted as encoding/csv quotes and ended by a newline. The parts are
// read by a scanner of the canonical JSON that DecisionPart and IdentifyingPart
// write, in their order of members, rather than decoded into a record: what an export
// of millions of records spends its time on otherwise. A part in another shape is
// decoded as JSON, to the same row.
//
// The cells of the page's URL and the user agent, which a visitor chooses, never
// start a formula in a spreadsheet: one that starts with = + - @, a tab or a carriage
// return gets a leading single quote (OWASP's advice on CSV injection). "=HYPERLINK"
// in a user agent would otherwise be a live link in the DPO's spreadsheet.
func AppendRecordCSV(dst []byte, l *Leaf, index int64, decision, identifying []byte) ([]byte, error) {
	var d csvDecision
	if err := d.scan(decision); err != nil {
		if err := d.decode(decision); err != nil {
			return dst, err
		}
	}
	var id csvIdentifying
	if len(identifying) > SaltSize {
		part := identifying[SaltSize:]
		if err := id.scan(part); err != nil {
			if err := id.decode(part); err != nil {
				return dst, err
			}
		}
	}
	dst = append(dst, l.RecordID.String()...)
	dst = appendCell(append(dst, ','), d.consentID)
	dst = appendCell(append(dst, ','), []byte(l.Site))
	dst = l.RecordedAt.AppendFormat(append(dst, ','), time.RFC3339Nano)
	for _, cell := range [...][]byte{d.action, d.surface, d.language, d.fingerprint, d.policyVersion} {
		dst = appendCell(append(dst, ','), cell)
	}
	dst = strconv.AppendBool(append(dst, ','), d.gpc)
	dst = appendCell(append(dst, ','), d.categories)
	dst = appendCell(append(dst, ','), d.partners)
	dst = appendInertCell(append(dst, ','), id.url)
	dst = appendCell(append(dst, ','), id.ipPrefix)
	dst = appendInertCell(append(dst, ','), id.userAgent)
	dst = appendCell(append(dst, ','), d.expiresAt)
	dst = strconv.AppendInt(append(dst, ','), index, 10)
	return append(dst, '\n'), nil
}

// csvDecision is what a row shows of a decision part: its choices as
// "name=true;name=false", in the order of their names, and its times as written.
type csvDecision struct {
	action, consentID, expiresAt, fingerprint, language, policyVersion, surface []byte
	categories, partners                                                        []byte
	gpc                                                                         bool
}

// scan reads b as DecisionPart writes it.
func (d *csvDecision) scan(b []byte) error {
	s := partScanner{b: b}
	s.expect(`{"action":`)
	d.action = s.str()
	s.expect(`,"choices":{"categories":`)
	d.categories = s.choices()
	s.expect(`,"partners":`)
	d.partners = s.choices()
	s.expect(`},"consent_id":`)
	d.consentID = s.str()
	s.expect(`,"expires_at":`)
	d.expiresAt = s.str()
	s.expect(`,"fingerprint":`)
	d.fingerprint = s.str()
	s.expect(`,"gpc":`)
	d.gpc = s.boolean()
	s.expect(`,"language":`)
	d.language = s.str()
	s.expect(`,"policy_version":`)
	d.policyVersion = s.str()
	s.expect(`,"surface":`)
	d.surface = s.str()
	s.expect(`}`)
	return s.end()
}

// decode reads b as any JSON of a decision part.
func (d *csvDecision) decode(b []byte) error {
	var r consent.Record
	if err := ParseDecisionPart(b, &r); err != nil {
		return err
	}
	*d = csvDecision{action: []byte(r.Action), consentID: []byte(r.ConsentID), expiresAt: r.ExpiresAt.AppendFormat(nil, time.RFC3339Nano),
		fingerprint: []byte(r.Fingerprint), language: []byte(r.Language), policyVersion: []byte(r.PolicyVersion), surface: []byte(r.Surface),
		categories: appendChoices(nil, r.Choices.Categories), partners: appendChoices(nil, r.Choices.Partners), gpc: r.GPC}
	return nil
}

// appendChoices appends m as "name=true;name=false" in the order of the names, as
// the canonical JSON holds them.
func appendChoices(dst []byte, m map[string]bool) []byte {
	b, _ := appendBools(nil, m) // names unique: they are a map's keys
	s := partScanner{b: b}
	return append(dst, s.choices()...)
}

// csvIdentifying is what a row shows of an identifying part.
type csvIdentifying struct{ ipPrefix, url, userAgent []byte }

// scan reads b, without its salt, as IdentifyingPart writes it.
func (id *csvIdentifying) scan(b []byte) error {
	s := partScanner{b: b}
	s.expect(`{"ip_prefix":`)
	id.ipPrefix = s.str()
	s.expect(`,"url":`)
	id.url = s.str()
	s.expect(`,"user_agent":`)
	id.userAgent = s.str()
	s.expect(`}`)
	return s.end()
}

// decode reads b, without its salt, as any JSON of an identifying part.
func (id *csvIdentifying) decode(b []byte) error {
	var v identifying
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("its identifying part is not JSON")
	}
	*id = csvIdentifying{ipPrefix: []byte(v.IPPrefix), url: []byte(v.URL), userAgent: []byte(v.UserAgent)}
	return nil
}

// partScanner reads a part of a record as canonical JSON writes it, member by member
// in a known order; the first thing out of place is its error.
type partScanner struct {
	b   []byte
	err error
}

var errShape = errors.New("not in the canonical shape")

func (s *partScanner) expect(lit string) {
	if s.err == nil && !bytes.HasPrefix(s.b, []byte(lit)) {
		s.err = errShape
	}
	if s.err == nil {
		s.b = s.b[len(lit):]
	}
}

func (s *partScanner) end() error {
	if s.err == nil && len(s.b) > 0 {
		s.err = errShape
	}
	return s.err
}

// str reads a JSON string: a part of the bytes scanned, unless it holds an escape.
// Canonical JSON escapes only quotes, backslashes and control characters; a string
// with an escape is unquoted by encoding/json.
func (s *partScanner) str() []byte {
	if s.err != nil || len(s.b) == 0 || s.b[0] != '"' {
		s.err = errShape
		return nil
	}
	escaped := false
	for i := 1; i < len(s.b); i++ {
		switch s.b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			raw := s.b[:i+1]
			s.b = s.b[i+1:]
			if !escaped {
				return raw[1:i]
			}
			var out string
			if err := json.Unmarshal(raw, &out); err != nil {
				s.err = errShape
			}
			return []byte(out)
		}
	}
	s.err = errShape
	return nil
}

func (s *partScanner) boolean() bool {
	switch {
	case s.err != nil:
	case bytes.HasPrefix(s.b, []byte("true")):
		s.b = s.b[4:]
		return true
	case bytes.HasPrefix(s.b, []byte("false")):
		s.b = s.b[5:]
	default:
		s.err = errShape
	}
	return false
}

// choices reads an object of booleans and returns it as "name=true;name=false".
func (s *partScanner) choices() []byte {
	s.expect("{")
	var out []byte
	for s.err == nil && len(s.b) > 0 && s.b[0] != '}' {
		if len(out) > 0 {
			s.expect(",")
			out = append(out, ';')
		}
		out = append(out, s.str()...)
		s.expect(":")
		out = strconv.AppendBool(append(out, '='), s.boolean())
	}
	s.expect("}")
	return out
}

// appendInertCell is appendCell for a cell a visitor chose, which it keeps from
// starting a formula (see AppendRecordCSV).
func appendInertCell(dst, cell []byte) []byte {
	if len(cell) > 0 && bytes.IndexByte([]byte("=+-@\t\r"), cell[0]) >= 0 {
		return appendCell(dst, append([]byte{'\''}, cell...))
	}
	return appendCell(dst, cell)
}

// appendCell appends cell to dst, quoted where encoding/csv would quote it: with a
// comma, a quote or a line break in it, a leading space, or `\.`.
func appendCell(dst, cell []byte) []byte {
	if !needsQuotes(cell) {
		return append(dst, cell...)
	}
	dst = append(dst, '"')
	for {
		i := bytes.IndexByte(cell, '"')
		if i < 0 {
			break
		}
		dst = append(append(dst, cell[:i+1]...), '"')
		cell = cell[i+1:]
	}
	dst = append(dst, cell...)
	return append(dst, '"')
}

func needsQuotes(cell []byte) bool {
	if len(cell) == 0 {
		return false
	}
	if string(cell) == `\.` || bytes.ContainsAny(cell, "\",\r\n") {
		return true
	}
	r, _ := utf8.DecodeRune(cell)
	return unicode.IsSpace(r)
}
