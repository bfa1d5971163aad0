package server

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
)

// exportPage is how many records an export reads per read transaction: short
// transactions keep bbolt's writer from stalling and memory flat.
const exportPage = 1000

// filter reads the record filters of a DPO request; a bad one is a 400 that names
// it. A token limited to sites sees only those.
func (s *Server) filter(c echo.Context, token *auth.Token) (consent.Filter, error) {
	var f consent.Filter
	q := c.QueryParams()
	if site := q.Get("site"); site != "" {
		if s.site(site) == nil {
			return f, consent.Errorf(consent.EInvalid, "filter site: unknown site %q", site)
		}
		if !token.MaySee(site) {
			return f, consent.Errorf(consent.EForbidden, "token %q may not see site %s", token.Name, site)
		}
		f.Sites = []string{site}
	} else if len(token.Sites) > 0 {
		f.Sites = token.Sites
	}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if v := q.Get(name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				return f, consent.Errorf(consent.EInvalid, "filter %s: %q is not a time (2026-11-27 or 2026-11-27T13:00:00Z)", name, v)
			}
			*dst = t
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, consent.Errorf(consent.EInvalid, "filter from: must be before to")
	}
	if a := consent.Action(q.Get("action")); a != "" {
		if !a.Valid() {
			return f, consent.Errorf(consent.EInvalid, "filter action: %q is not one of accept_all, reject_all, custom, withdraw, gpc", a)
		}
		f.Action = a
	}
	f.Fingerprint, f.Language = q.Get("fingerprint"), q.Get("language")
	return f, nil
}

func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	return time.Parse(time.DateOnly, v)
}

// handleRecords returns one page of records; "next" is the cursor of the next page,
// "" after the last.
func (s *Server) handleRecords(c echo.Context) error {
	f, err := s.filter(c, dpoToken(c))
	if err != nil {
		return err
	}
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	records, err := s.store.Records(c.Request().Context(), f, c.QueryParam("after"), limit)
	if err != nil {
		return err
	}
	next := ""
	if len(records) == limit {
		next = records[len(records)-1].ID
	}
	return c.JSON(http.StatusOK, map[string]any{"records": records, "next": next})
}

// pageLimit reads the page size of a listing: 100 unless the query says 1 to 1000.
func pageLimit(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, consent.Errorf(consent.EInvalid, "filter limit: a number from 1 to 1000")
	}
	return n, nil
}

// csvHeader names the columns of a CSV export.
var csvHeader = []string{"record_id", "consent_id", "site", "recorded_at", "action", "surface", "language",
	"fingerprint", "policy_version", "gpc", "categories", "partners", "url", "ip_prefix", "user_agent",
	"expires_at", "log_index"}

// handleExport streams every record the filters select as CSV or NDJSON, a page of
// records at a time: memory stays flat however many there are. A page is read into
// a buffer in one short read transaction and written after it, so that a slow client
// never holds a transaction open.
func (s *Server) handleExport(c echo.Context) error {
	f, err := s.filter(c, dpoToken(c))
	if err != nil {
		return err
	}
	format := c.QueryParam("format")
	if format == "" {
		format = "ndjson"
	}
	ctx := c.Request().Context()
	var next func(dst []byte, after string) ([]byte, int, string, error)
	switch format {
	case "ndjson":
		next = func(dst []byte, after string) ([]byte, int, string, error) {
			return s.store.AppendNDJSON(ctx, f, after, exportPage, dst)
		}
	case "csv":
		// From the NDJSON lines: their receipt is the seal, all a row needs of it,
		// so no receipt is rebuilt.
		var lines []byte // reused from page to page
		next = func(dst []byte, after string) ([]byte, int, string, error) {
			page, n, last, err := s.store.AppendNDJSON(ctx, f, after, exportPage, lines[:0])
			if lines = page; err != nil || n == 0 {
				return dst, 0, "", err
			}
			buf := bytes.NewBuffer(dst)
			cw := csv.NewWriter(buf)
			for line := range bytes.Lines(page) {
				var r consent.Record
				if err := json.Unmarshal(line, &r); err != nil {
					return dst, 0, "", err
				}
				cw.Write(csvRow(&r))
			}
			cw.Flush()
			return buf.Bytes(), n, last, cw.Error()
		}
	default:
		return consent.Errorf(consent.EInvalid, "filter format: csv or ndjson")
	}
	buf := make([]byte, 0, 1<<20)
	if format == "csv" {
		buf = append(buf, strings.Join(csvHeader, ",")+"\r\n"...)
	}
	buf, n, last, err := next(buf, c.QueryParam("after"))
	if err != nil {
		return err
	}
	h := c.Response().Header()
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Content-Disposition", `attachment; filename="consent-records.`+format+`"`)
	c.Response().WriteHeader(http.StatusOK)
	w := deadlineWriter{c.Response()}
	for {
		if _, err := w.Write(buf); err != nil {
			s.abort(c, "export", err)
			return nil
		}
		c.Response().Flush()
		if n < exportPage {
			return nil
		}
		if buf, n, last, err = next(buf[:0], last); err != nil {
			s.abort(c, "export", err)
			return nil
		}
	}
}

func csvRow(r *consent.Record) []string {
	row := []string{r.ID, r.ConsentID, r.Site, r.RecordedAt.Format(time.RFC3339Nano), string(r.Action), string(r.Surface),
		r.Language, r.Fingerprint, r.PolicyVersion, strconv.FormatBool(r.GPC), choices(r.Choices.Categories),
		choices(r.Choices.Partners), r.URL, r.IPPrefix, r.UserAgent, r.ExpiresAt.Format(time.RFC3339Nano), strconv.FormatInt(r.LogIndex, 10)}
	for _, i := range clientCells {
		row[i] = inertCell(row[i])
	}
	return row
}

// clientCells are the columns of a CSV row whose text a client chooses (the page
// URL, the user agent); the others come from the server or were checked against the
// configuration, and a signature must stay exactly as signed.
var clientCells = []int{slices.Index(csvHeader, "url"), slices.Index(csvHeader, "user_agent")}

// inertCell keeps a spreadsheet from running a cell as a formula: a visitor chooses
// their user agent, and "=HYPERLINK(...)" in it would become a live link in the
// DPO's spreadsheet. As OWASP recommends for CSV injection, a cell that starts with
// = + - @, a tab or a carriage return gets a leading single quote, which spreadsheets
// show as text.
func inertCell(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

// choices writes a choice map as "a=true;b=false", in name order.
func choices(m map[string]bool) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+strconv.FormatBool(m[k]))
	}
	return strings.Join(parts, ";")
}
