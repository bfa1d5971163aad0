package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
	"github.com/mixvoip/consentd/auth"
)

// filter reads the record filters of a DPO request; a bad one is a 400 that names
// it. A token limited to sites sees only those.
func (s *Server) filter(c echo.Context, token *auth.Token) (consent.Filter, error) {
	var f consent.Filter
	q := c.QueryParams()
	if site := q.Get("site"); site != "" {
		if s.servedSite(site) == nil {
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
	return c.JSON(http.StatusOK, &api.RecordPage{Records: records, Next: next})
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
