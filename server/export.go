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
)

// exportPage is how many records an export reads per read transaction: short
// transactions keep bbolt's writer from stalling and memory flat.
const exportPage = 1000

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
			return consent.AppendNDJSON(ctx, s.store, f, after, exportPage, dst)
		}
	case "csv":
		// From the NDJSON lines: their receipt is the seal, all a row needs of it,
		// so no receipt is rebuilt.
		var lines []byte // reused from page to page
		next = func(dst []byte, after string) ([]byte, int, string, error) {
			page, n, last, err := consent.AppendNDJSON(ctx, s.store, f, after, exportPage, lines[:0])
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
