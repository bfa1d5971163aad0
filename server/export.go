package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// exportPage is how many records an export reads per read transaction: short
// transactions keep bbolt's writer from stalling and memory flat.
const exportPage = 1000

// handleExport streams every record the filters select as CSV or NDJSON, a page of
// records at a time: memory stays flat however many there are. A page is read into
// a buffer in one short read transaction and written after it, so that a slow client
// never holds a transaction open.
func (s *Server) handleExport(c echo.Context) error {
	f, err := s.filter(c, dpoToken(c))
	if err != nil {
		return err
	}
	format := consent.ExportFormat(c.QueryParam("format"))
	switch format {
	case "":
		format = consent.ExportNDJSON
	case consent.ExportNDJSON, consent.ExportCSV:
	default:
		return consent.Errorf(consent.EInvalid, "filter format: csv or ndjson")
	}
	ctx := c.Request().Context()
	next := func(dst []byte, after string) ([]byte, int, string, error) {
		return s.store.AppendExport(ctx, f, after, exportPage, format, dst)
	}
	buf := make([]byte, 0, 1<<20)
	if format == consent.ExportCSV {
		buf = append(buf, strings.Join(translog.CSVHeader, ",")+"\n"...)
	}
	buf, n, last, err := next(buf, c.QueryParam("after"))
	if err != nil {
		return err
	}
	h := c.Response().Header()
	if format == consent.ExportCSV {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Content-Disposition", `attachment; filename="consent-records.`+string(format)+`"`)
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
